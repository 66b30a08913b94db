# Sourced by build_base.sh and build.sh: what both shims need.

# need FLAG [VALUE...]: the flag's value is there and not empty, else one error line.
need() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "error: $1 needs a value (see $(basename "$0") --help)" >&2
        exit 2
    fi
}

# find_python REPO: print the first Python that can run musa_docker (with its dependencies):
# $PYTHON when set, else python3 on PATH, else the repo's .venv, else python on PATH.
find_python() {
    local repo=$1 tried=() py
    for py in ${PYTHON:+"$PYTHON"} python3 "$repo/.venv/bin/python" "$repo/venv/bin/python" python; do
        command -v "$py" >/dev/null 2>&1 || { tried+=("$py (not found)"); continue; }
        if PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$py" -c 'import musa_docker.cli' >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
        tried+=("$py (no musa_docker dependencies)")
    done
    local list
    list=$(printf '%s, ' "${tried[@]}")
    echo "error: no Python can run musa_docker; tried: ${list%, }; install it with \`pip install -e $repo\` (or into $repo/.venv), or set PYTHON=/path/to/python" >&2
    exit 127
}
