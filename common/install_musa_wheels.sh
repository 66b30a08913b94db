#!/usr/bin/env bash
# Install the MUSA-built wheels named as requirements (torch==2.7.1+musa5.2.0, ...) from the MUSA
# pip index ALONE, --no-deps, before anything else is installed: names such as torch exist on the
# public index too, with other meanings, so the two indexes are never merged (no
# --extra-index-url; pip's config files and PIP_* index variables are ignored here). Their
# ordinary dependencies come later from PIP_INDEX_URL (install_wheels.sh, build scripts), which
# then finds the MUSA builds already installed. As MooreThreads/vllm-musa's musa.Dockerfile does.
#
# Environment (build args):
#   MUSA_WHEELS         'name==version ...', checked by musa_docker; '' = nothing to do
#   MUSA_WHEEL_HASHES   under --lock: 'name==version@sha256hex[,sha256hex...] ...', the files the lock
#                       records; pip then takes only a file of one of those sha256s (--require-hashes)
#   MUSA_PIP_INDEX_URL  the MUSA index
#   PYTHON_PREFIX       the env (release); '' = the `python` on PATH (dev)
#
# What pip installed (name, version, the sha256 of the wheel the index served, its file name) is kept
# in <the env's prefix>/musa-docker-musa-wheels.tsv, from pip's --report (pip 22.2 and later), for the
# image's SBOM: the index's wheels are inputs too, and their hash is known only here.
set -euo pipefail

log() { echo "install_musa_wheels: $*"; }
die() { echo "error: install_musa_wheels: $*" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL

read -r -a reqs <<<"${MUSA_WHEELS:-}"
if [ "${#reqs[@]}" -eq 0 ]; then
    log "no MUSA wheels asked"
    exit 0
fi
[ -n "${MUSA_PIP_INDEX_URL:-}" ] || die "MUSA_WHEELS is set but MUSA_PIP_INDEX_URL is empty"
python="${PYTHON_PREFIX:+${PYTHON_PREFIX}/bin/}python"
args=(-- "${reqs[@]}")
read -r -a locked <<<"${MUSA_WHEEL_HASHES:-}"
if [ "${#locked[@]}" -gt 0 ]; then
    # the lock's files only: a requirements file with every locked sha256 of each requirement
    file="$(mktemp)"
    trap 'rm -f "${file}"' EXIT
    for item in "${locked[@]}"; do
        req="${item%@*}"
        [[ "${req}" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][A-Za-z0-9.+!_-]*$ ]] || die "'${req}' is not name==version"
        line="${req}"
        IFS=, read -r -a shas <<<"${item#*@}"
        for sha in "${shas[@]}"; do
            [[ "${sha}" =~ ^[0-9a-f]{64}$ ]] || die "'${sha}' is not a sha256"
            line="${line} --hash=sha256:${sha}"
        done
        echo "${line}" >>"${file}"
    done
    [ "$(wc -l <"${file}")" -eq "${#reqs[@]}" ] || die "MUSA_WHEEL_HASHES does not name each of MUSA_WHEELS"
    args=(--require-hashes -r "${file}")
    log "the files of ${reqs[*]} must have the sha256 the lock records (--require-hashes)"
fi
index=(--index-url "${MUSA_PIP_INDEX_URL}")
if [ -d "${OFFLINE_DIR}/pip/musa" ]; then
    # --offline: the bundle's wheelhouse of the MUSA index, bind-mounted (net_env.sh); no network
    index=(--no-index --find-links "${OFFLINE_DIR}/pip/musa")
    MUSA_PIP_INDEX_SHOWN="the bundle's wheelhouse of ${MUSA_PIP_INDEX_SHOWN} (offline)"
fi
log "pip install --no-deps ${reqs[*]} from ${MUSA_PIP_INDEX_SHOWN} alone"
report=()
if "${python}" -m pip install --help 2>/dev/null | grep -q -- '--report'; then
    report=(--report /tmp/musa-wheels-report.json)
fi
env -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_FIND_LINKS -u PIP_NO_INDEX -u PIP_CONSTRAINT \
    PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "${python}" -m pip install --no-deps "${index[@]}" ${report[@]+"${report[@]}"} "${args[@]}" \
    || die "pip could not install ${reqs[*]} from the MUSA index ${MUSA_PIP_INDEX_SHOWN}; pip's output above names what it lacks"
if [ "${#report[@]}" -gt 0 ]; then
    # name, version, sha256, file name: no URL (it may carry the index's credentials)
    "${python}" - /tmp/musa-wheels-report.json <<'PY'
import json, os, sys
report = json.load(open(sys.argv[1]))
with open(os.path.join(sys.prefix, "musa-docker-musa-wheels.tsv"), "w") as out:
    for item in report.get("install", []):
        info = item.get("download_info") or {}
        archive = info.get("archive_info") or {}
        sha = (archive.get("hashes") or {}).get("sha256") or ""
        if not sha and str(archive.get("hash", "")).startswith("sha256="):
            sha = archive["hash"].split("=", 1)[1]
        meta = item.get("metadata") or {}
        name = os.path.basename(str(info.get("url", "")).split("#")[0].split("?")[0])
        out.write("\t".join([meta.get("name", ""), meta.get("version", ""), sha, name]) + "\n")
PY
    rm -f /tmp/musa-wheels-report.json
fi
log "done"
