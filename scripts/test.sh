#!/usr/bin/env bash
# The whole test suite on a fresh machine: brings up the engine and tools the tests need,
# installs the project, runs pytest. Extra arguments go to pytest: -m quick runs the tests
# that need no engine (tests/unit/), -m "not e2e" all but the slow image builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh
python3 -m pip install -q -e '.[test]'
exec python3 -m pytest "$@"
