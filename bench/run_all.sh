#!/usr/bin/env bash
# Run every plugwatch benchmark once, in sequence, with the settings used in docs/benchmarks.md.
#
#     bench/run_all.sh [OUTPUT]          # default OUTPUT: bench-results-<UTC date>.txt
#
# Each bench is bounded (under 10 minutes on a 2-core machine) and prints its own figures, with
# the load average; this script adds a header naming the machine, and keeps a copy in OUTPUT.
# Needs the test extra installed (python-kasa for the side-by-side bench).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-bench-results-$(date -u +%Y%m%dT%H%MZ).txt}

run() {
    echo
    echo "\$ $*"
    timeout 900 "$@" || echo "(exit status $?)"
}

{
    echo "plugwatch benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1)," \
         "$("$PY" -V 2>&1), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    # issue 17's goals, medians of 3: one process on one core over TCP and over UDP, twice the
    # sustainable load, memory per plug, and the 2-core box with --workers 2 (emulators on the
    # same box)
    run "$PY" bench/bench_service.py --plugs 1000 10000 --seconds 20 --repeats 3
    run "$PY" bench/bench_service.py --plugs 25000 --transport udp --seconds 20 --repeats 3
    run "$PY" bench/bench_service.py --plugs 20000 --workers 2 --seconds 20 --repeats 3
    run "$PY" bench/bench_service.py --plugs 5000 --overload 2 --seconds 20 --repeats 3
    run "$PY" bench/bench_service.py --plugs 10000 --seconds 10 --repeats 1 --tracemalloc
    run "$PY" bench/bench_read_path.py --plugs 1000 10000 --seconds 10 --repeats 3
    run "$PY" bench/bench_read_path.py --plugs 200 --seconds 5 --repeats 1 --callgrind
    run "$PY" bench/bench_pykasa.py --plugs 100 1000 --rounds 10 --repeats 3
    run "$PY" bench/bench_emulator.py --plugs 5000 --repeats 3
    run "$PY" bench/bench_replay.py --samples 2000000 --repeat 3
    run "$PY" bench/bench_replay.py --year --repeat 1
    run "$PY" bench/bench_store.py --plugs 1000 --seconds 10
    run "$PY" bench/bench_alerts.py --plugs 20
    run "$PY" bench/bench_alerts.py --plugs 5000
    run "$PY" bench/bench_observe.py --runs 3 --influx-points 100000
    run "$PY" bench/bench_mqtt_ingest.py --plugs 1000 --rates 5000 20000 40000 --seconds 5 --repeats 3
    run "$PY" bench/bench_mqtt_publish.py --plugs 10000 --seconds 30 --repeats 3
} 2>&1 | tee "$OUT"
