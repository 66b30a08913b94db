#!/usr/bin/env bash
# Run an installer and keep what it wrote, alone, in a directory of its own, so that the image
# takes each component as one layer (`COPY --from=STAGE OUT/ /`) that a change in another
# component leaves cached: a new MCCL rebuilds the MCCL layer, not the toolkit's or muDNN's.
#
# Usage: capture.sh OUT DIR... -- COMMAND [ARG...]
#
# An entry under the DIRs counts as written when it is new or its inode, type, mode, owner, size,
# mtime or ctime changed; OUT mirrors / with those entries only. An entry the installer deletes
# cannot be expressed by a copied layer and stays in the image from the earlier one: it is named.
set -euo pipefail

log() { echo "capture: $*"; }
die() { echo "error: capture: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: capture.sh OUT DIR... -- COMMAND [ARG...]"
out="$1"
shift
dirs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    dirs+=("$1")
    shift
done
if [ "${#dirs[@]}" -eq 0 ] || [ $# -lt 2 ]; then
    die "usage: capture.sh OUT DIR... -- COMMAND [ARG...]"
fi
shift

work="$(mktemp -d /tmp/capture.XXXXXX)"
trap 'rm -rf "${work}"' EXIT

mkdir -p "${dirs[@]}"
snapshot() {
    find "${dirs[@]}" -xdev -printf '%p\t%i %y %m %U %G %s %T@ %C@\n' | LC_ALL=C sort
}

snapshot >"${work}/before"
"$@"
snapshot >"${work}/after"

# Paths only: `comm` on whole lines finds the changed ones, `cut` keeps their names.
LC_ALL=C comm -13 "${work}/before" "${work}/after" | cut -f1 | sed 's#^/##' >"${work}/written"
cut -f1 "${work}/before" | LC_ALL=C sort >"${work}/before.paths"
cut -f1 "${work}/after" | LC_ALL=C sort >"${work}/after.paths"
LC_ALL=C comm -23 "${work}/before.paths" "${work}/after.paths" >"${work}/deleted"

mkdir -p "${out}"
if [ -s "${work}/written" ]; then
    tar -C / --no-recursion --verbatim-files-from -T "${work}/written" -cf - | tar -C "${out}" -xpf -
fi
# The list of what was kept goes into the layer too, one file per component: it tells what each
# layer holds, and it keeps two components that wrote nothing (an SDK from apt, a wheel from the
# MUSA index) from making identical empty layers, which the classic builder cannot export.
record="${out}/opt/musa_docker/layers/$(basename "${out}")"
mkdir -p "$(dirname "${record}")"
cp "${work}/written" "${record}"
if [ -s "${work}/deleted" ]; then
    log "warning: $(wc -l <"${work}/deleted") entries deleted by the installer stay in the image, e.g. $(head -n 3 "${work}/deleted" | tr '\n' ' ')"
fi
log "kept $(wc -l <"${work}/written") written entries of ${dirs[*]} in ${out}"
