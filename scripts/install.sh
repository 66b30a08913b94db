#!/usr/bin/env bash
# Install musa-docker into its own venv (.venv in this checkout: Debian 12's system Python is
# externally managed), make sure a Docker engine answers (scripts/engine.sh), and say how to run it.
# Works for a non-root user: only the engine's install and start use sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "install python3-venv"
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q .
echo "installed: $(.venv/bin/musa-docker --version) at $PWD/.venv/bin/musa-docker"
