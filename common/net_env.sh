# shellcheck shell=bash
# The network settings of a build step: sourced (never run) by every script that reaches the
# network (apt, pip, conda, git, curl), from the dir the script is in.
#
# With BuildKit the step mounts (musa_docker/plan/dockerfile.py, `@net`):
#   /run/secrets/musa_docker_ca         the CAs of --ca-cert (a secret mount)
#   /run/secrets/musa_docker_pip_index  --pip-index-url with its credentials (a secret mount)
#   /run/secrets/musa_docker_musa_pip_index  --musa-pip-index-url with its credentials (a secret mount)
#   /run/musa_docker_net                a tmpfs, for the combined CA bundle and apt's config
# A secret not given is not there. What this writes goes to the tmpfs, and what it exports lives
# in this step's processes only: nothing of it stays in a layer or the image's history. With the
# classic builder there are no such mounts, and it only drops an empty PIP_INDEX_URL.
#
# Sets PIP_INDEX_SHOWN and MUSA_PIP_INDEX_SHOWN: the indexes as log lines may name them (the build
# args, which never hold credentials), since PIP_INDEX_URL and MUSA_PIP_INDEX_URL may now hold them.
# The host's proxies need nothing here: Docker sets them in the step's environment itself.

NET_SECRETS=/run/secrets
NET_DIR=/run/musa_docker_net
# --offline (BuildKit): the lock's apt packages and wheels, bind-mounted read-only; the step has no network
OFFLINE_DIR=/tmp/musa-docker-offline

[ -n "${PIP_INDEX_URL:-}" ] || unset PIP_INDEX_URL  # an empty value would be taken as the index
PIP_INDEX_SHOWN="${PIP_INDEX_URL:-the default index}"
if [ -s "${NET_SECRETS}/musa_docker_pip_index" ]; then
    PIP_INDEX_URL="$(cat "${NET_SECRETS}/musa_docker_pip_index")"
    export PIP_INDEX_URL
    PIP_INDEX_SHOWN="${PIP_INDEX_SHOWN} (its credentials from a secret)"
fi
if [ -n "${PIP_LOCKED:-}" ]; then
    # --lock: pip takes the public index's distributions at the locked versions only (a constraints
    # file in /dev/shm, a tmpfs in every RUN step: in no layer)
    read -r -a _locked <<<"${PIP_LOCKED}"
    printf '%s\n' "${_locked[@]}" >/dev/shm/musa-docker-pip-locked.txt
    export PIP_CONSTRAINT=/dev/shm/musa-docker-pip-locked.txt
fi
if [ -d "${OFFLINE_DIR}/pip/public" ]; then
    # --offline: the bundle's wheelhouse of the public index alone
    unset PIP_INDEX_URL
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="${OFFLINE_DIR}/pip/public"
    PIP_INDEX_SHOWN="the bundle's wheelhouse of the public index (offline)"
fi
MUSA_PIP_INDEX_SHOWN="${MUSA_PIP_INDEX_URL:-}"
if [ -s "${NET_SECRETS}/musa_docker_musa_pip_index" ]; then
    MUSA_PIP_INDEX_URL="$(cat "${NET_SECRETS}/musa_docker_musa_pip_index")"
    export MUSA_PIP_INDEX_URL
    MUSA_PIP_INDEX_SHOWN="${MUSA_PIP_INDEX_SHOWN} (its credentials from a secret)"
fi

if [ -s "${NET_SECRETS}/musa_docker_ca" ]; then
    if ! [ -d "${NET_DIR}" ] || ! [ -w "${NET_DIR}" ]; then
        echo "error: net_env: ${NET_DIR} is missing: this RUN step needs @net in its Dockerfile template" >&2
        exit 1
    fi
    # The image's own CAs (when ca-certificates is installed) and the given ones, in one file:
    # every tool below reads a single bundle.
    {
        if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
            cat /etc/ssl/certs/ca-certificates.crt
            echo
        fi
        cat "${NET_SECRETS}/musa_docker_ca"
    } >"${NET_DIR}/ca-certificates.crt"
    # APT_CONFIG is read besides /etc/apt/apt.conf.d, not instead of it
    printf 'Acquire::https::CAInfo "%s";\n' "${NET_DIR}/ca-certificates.crt" >"${NET_DIR}/apt.conf"
    export APT_CONFIG="${NET_DIR}/apt.conf" \
        SSL_CERT_FILE="${NET_DIR}/ca-certificates.crt" \
        REQUESTS_CA_BUNDLE="${NET_DIR}/ca-certificates.crt" \
        PIP_CERT="${NET_DIR}/ca-certificates.crt" \
        CURL_CA_BUNDLE="${NET_DIR}/ca-certificates.crt" \
        GIT_SSL_CAINFO="${NET_DIR}/ca-certificates.crt" \
        CONDA_SSL_VERIFY="${NET_DIR}/ca-certificates.crt"
    echo "net_env: apt, pip, conda, git and curl trust the CAs of --ca-cert (a bundle in the tmpfs ${NET_DIR})"
fi
