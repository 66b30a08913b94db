#!/bin/bash
# What ccache costs on a miss, unit by unit: the CPU time (user + system of the children, bash's
# `times`) and the wall time per unit of compiling the stand-in's units one at a time with g++
# alone, under ccache with an empty cache (direct mode: on a miss it runs the preprocessor, hashes
# its output, compiles, stores the object), under ccache in depend mode (no preprocessor run),
# under ccache again (every unit a hit), and of the preprocessor alone (g++ -E).
#
# Run in a container of the base image (it has g++ and ccache), the stand-in's repo mounted at /src:
#   docker run --rm --network none -v STANDIN_REPO:/src:ro -v "$PWD/bench/rebuild/ccache_miss.sh:/p.sh:ro" \
#       BASE_IMAGE bash /p.sh [UNITS] [ROUNDS]
# (STANDIN_REPO: e.g. the work dir's upstream/torch_musa of cold.py --keep.)
set -euo pipefail
n="${1:-20}" rounds="${2:-2}"
cpu() { awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' /tmp/times; }
run() {
    local name="$1" a b t0 t1 i f
    shift
    rm -rf /tmp/o && mkdir -p /tmp/o
    times >/tmp/times; a="$(cpu)"; t0="$(date +%s.%N)"
    for i in $(seq 0 $((n - 1))); do
        f="$(printf 'unit%04d' "${i}")"
        "$@" -std=gnu++17 -O3 -DNDEBUG -I/src/include -fPIC -o "/tmp/o/${f}.o" -c "/src/csrc/${f}.cpp"
    done
    t1="$(date +%s.%N)"; times >/tmp/times; b="$(cpu)"
    awk -v a="${a}" -v b="${b}" -v t0="${t0}" -v t1="${t1}" -v n="${n}" -v name="${name}" \
        'BEGIN { printf "%-32s cpu %.2fs/unit  wall %.2fs/unit\n", name, (b - a) / n, (t1 - t0) / n }'
}
cd /tmp
for _ in $(seq "${rounds}"); do
    run "g++" g++
    export CCACHE_DIR=/tmp/ccache-direct; rm -rf "${CCACHE_DIR}"
    run "ccache, empty cache" ccache g++
    run "ccache, every unit a hit" ccache g++
    export CCACHE_DIR=/tmp/ccache-depend; rm -rf "${CCACHE_DIR}"
    run "ccache depend mode, empty cache" env CCACHE_DEPEND=1 ccache g++
    run "g++ -E (the preprocessor alone)" g++ -E
done
