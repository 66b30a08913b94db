#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up the engine and tools the tests need,
# installs the project, runs pytest. Extra arguments go to pytest (e.g. -m "not e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh
python3 -m pip install -q -e '.[test]'
exec python3 -m pytest "$@"
