#!/bin/sh
# The probe `verify` runs in an image: with /bin/sh, so that an image without python still
# reports everything else. musa_docker sends this file as `sh -c TEXT sh ARGS...`, since the image
# need not contain it. Each section of output is framed by begin/end lines; `end` carries the
# section's exit code.
#
# Arguments: $1 the python probe (common/probe_image.py), $2 its JSON spec, $3 the MUSA program
# (C source), $4 "1" to build it with $MUSA_HOME/bin/mcc and run it when a device is visible.
py=$1 spec=$2 mu=$3 build=$4
begin() { printf '\n@@musa_docker_verify begin %s\n' "$1"; }
end() { printf '\n@@musa_docker_verify end %s %s\n' "$1" "$2"; }

begin python
python -c "$py" "$spec" 2>&1
end python $?

begin musa_home
if [ -n "${MUSA_HOME+set}" ]; then echo "set=1"; fi
echo "value=${MUSA_HOME:-}"
if [ -n "${MUSA_HOME:-}" ] && [ -d "$MUSA_HOME/bin" ]; then echo "bin=1"; fi
if [ -n "${MUSA_HOME:-}" ] && [ -d "$MUSA_HOME/lib" ]; then echo "lib=1"; fi
if [ -n "${MUSA_HOME:-}" ] && [ -x "$MUSA_HOME/bin/mcc" ]; then echo "mcc=1"; fi
end musa_home 0

# The MUSA device nodes: /dev/mtgpu*, and the DRI nodes the mtgpu driver owns.
devices=
for node in /dev/mtgpu* /dev/dri/renderD*; do
    [ -e "$node" ] || continue
    case $node in
        /dev/dri/*)
            driver=$(readlink "/sys/class/drm/${node##*/}/device/driver" 2>/dev/null)
            case ${driver##*/} in mtgpu*) ;; *) continue ;; esac ;;
    esac
    devices="$devices $node"
done
begin devices
printf '%s\n' "${devices# }"
end devices 0
[ -n "$devices" ] || exit 0

begin gmi
if command -v mthreads-gmi >/dev/null 2>&1; then
    mthreads-gmi 2>&1
    end gmi $?
else
    echo "mthreads-gmi is not on PATH in the container"
    end gmi 127
fi

[ "$build" = 1 ] || exit 0
dir=/tmp/musa_docker_verify.$$
mkdir -p "$dir"
printf '%s' "$mu" >"$dir/probe.mu"
begin mcc
"$MUSA_HOME/bin/mcc" "$dir/probe.mu" -o "$dir/probe" -L"$MUSA_HOME/lib" -lmusart 2>&1
rc=$?
end mcc $rc
if [ $rc -eq 0 ]; then
    begin program
    "$dir/probe" 2>&1
    end program $?
fi
rm -rf "$dir"
