"""`invoke` in the repo root is `musa-docker`: the same tasks, flags, errors, config file
(musa_docker.yaml) and MUSA_DOCKER_* variables.

invoke imports this file to find its tasks; by then it has read only its own options, so the whole
command line is handed to musa-docker's front door, which takes the tool's own options alone.
"""

import os
import sys

if os.path.basename(sys.argv[0]) in ("invoke", "inv") or sys.argv[0].endswith(os.path.join("invoke", "__main__.py")):
    from musa_docker.cli import main

    sys.exit(main(sys.argv[1:], prog="invoke"))
