#!/usr/bin/env bash
# Run every plugwatch benchmark once, in sequence, with the settings used in docs/benchmarks.md.
#
#     bench/run_all.sh [OUTPUT]          # default OUTPUT: bench-results-<UTC date>.txt
#
# Each bench is bounded (under 5 minutes on a 2-core machine) and prints its own figures; this
# script adds a header naming the machine and load, and keeps a copy of everything in OUTPUT.
# Needs the test extra installed (python-kasa for the side-by-side bench).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-bench-results-$(date -u +%Y%m%dT%H%MZ).txt}

# Emulated plugs listen on OS-chosen ports; a stopped emulator leaves its closed connections in
# TIME_WAIT for 60 s, which can use up the port range a 10,000-plug run needs: wait them out.
settle() {
    for _ in $(seq 70); do
        [ "$(ss -tan state time-wait | wc -l)" -lt 2000 ] && return
        sleep 1
    done
}

run() {
    echo
    echo "\$ $*"
    timeout 300 "$@" || echo "(exit status $?)"
}

{
    echo "plugwatch benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1)," \
         "$("$PY" -V 2>&1), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    for n in 1000 5000 10000; do
        settle
        run "$PY" bench/bench_service.py --plugs "$n" --seconds 40
    done
    settle
    run "$PY" bench/bench_vs_python_kasa.py --plugs 500 --seconds 10 --repeats 5
    run "$PY" bench/bench_emulator.py --plugs 5000 --repeats 3
    run "$PY" bench/bench_replay.py --samples 2000000 --repeat 3
    run "$PY" bench/bench_replay.py --year --repeat 1
    run "$PY" bench/bench_store.py --plugs 1000 --batches 20
    if [ -f bench/bench_alerts.py ]; then
        run "$PY" bench/bench_alerts.py --plugs 20
    fi
    run "$PY" bench/bench_observe.py --runs 3 --influx-points 100000
} 2>&1 | tee "$OUT"
