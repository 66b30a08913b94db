#!/usr/bin/env bash
# Make sure the image has a group `render` with gid RENDER_GID: only members of the render group
# may open the MooreThreads GPU device nodes, and those nodes carry the host's gid.
#
# Usage: add_render_group.sh [GID]   (default: $RENDER_GID, else 109)
#
# - no `render` group: create it with GID;
# - `render` exists with another gid: change its gid to GID;
# - GID already belongs to another group: `render` shares that gid (groupadd/groupmod -o), as
#   the images this replaces did with `groupadd -o -g 109 render`. Access to the devices goes by
#   number, so both names then grant it; renumbering the other group instead would orphan the
#   files it owns.
set -euo pipefail

log() { echo "add_render_group: $*"; }
die() { echo "error: add_render_group: $*" >&2; exit 1; }

gid="${1:-${RENDER_GID:-109}}"
[[ "${gid}" =~ ^[0-9]+$ ]] || die "RENDER_GID must be a number, got '${gid}'"
command -v groupadd >/dev/null || die "groupadd not found (package passwd); cannot create the render group"

current="$(getent group render | cut -d: -f3 || true)"
owner="$(getent group "${gid}" | cut -d: -f1 || true)"
share=()
if [ -n "${owner}" ] && [ "${owner}" != render ]; then
    log "gid ${gid} already belongs to group '${owner}'; render shares it"
    share=(-o)
fi

if [ -z "${current}" ]; then
    log "create group render (gid ${gid})"
    groupadd "${share[@]}" -g "${gid}" render
elif [ "${current}" = "${gid}" ]; then
    log "group render already has gid ${gid}"
else
    log "group render has gid ${current}; change it to ${gid}"
    groupmod "${share[@]}" -g "${gid}" render
fi

[ "$(getent group render | cut -d: -f3)" = "${gid}" ] || die "group render does not have gid ${gid} after the change"
