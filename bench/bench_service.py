"""The real service sampling N emulated plugs at 1 Hz: throughput, lateness, CPU, memory, DB rows.

    .venv/bin/python bench/bench_service.py [--plugs 1000 5000 10000] [--seconds 30]

For each N, emulated HS110v2 plugs are served by separate processes (5,000 plugs each); this
process runs the real Service (sampler + detectors + writer thread + SQLite in a temporary
folder) at a 1 s interval. After a warm-up (first contact with every plug) the measurement window
prints: samples/s, missed samples (planned reads that did not start), p50/p99 lateness (read
start - planned time), CPU µs per sample of this process (user + system, all threads, so the
writer's database work is included), peak RSS and the rows the writer wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

PER_EMULATOR = 5000
EMULATOR = """
import asyncio, json, sys
from plugwatch.emulator import EmulatedPlug, Emulator
async def main(n):
    plugs = [EmulatedPlug("HS110v2", alias=f"bench {i}", power=100.0 + i % 7) for i in range(n)]
    emulator = Emulator()
    ports = await emulator.start(plugs)
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1])))
"""


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(ports: list[int], seconds: float, warmup: float, folder: str) -> dict:
    from plugwatch.emulator import raise_open_file_limit
    from plugwatch.testing import emulated_config, running_service

    raise_open_file_limit()
    config = emulated_config({f"p{i}": port for i, port in enumerate(ports)},
                             f"sqlite:///{folder}/bench.db", interval_s=1.0, timeout_s=2.0)
    async with running_service(config) as service:
        await asyncio.sleep(warmup)
        stats, writer = service.sampler.stats, service.writer
        t0, cpu0, started0 = time.time(), _cpu_s(), stats.started
        lateness0, rows0 = len(stats.lateness_s), writer.stats.readings
        failures0, skipped0 = stats.failures, stats.skipped
        planned0 = service.sampler.planned_reads(t0)
        await asyncio.sleep(seconds)
        t1, cpu1, started1 = time.time(), _cpu_s(), stats.started
        planned1 = service.sampler.planned_reads(t1)
        lateness = sorted(stats.lateness_s[lateness0:])
        failures, skipped = stats.failures - failures0, stats.skipped - skipped0
    rows = writer.stats.readings - rows0  # written by the end of the clean stop
    samples = started1 - started0
    return {
        "samples": samples, "seconds": t1 - t0, "cpu_s": cpu1 - cpu0, "lateness": lateness,
        "planned": planned1 - planned0,
        "samples_per_s": samples / (t1 - t0),
        "missed": max(0, (planned1 - planned0) - samples),
        "failures": failures, "skipped": skipped,
        "p50_ms": 1000 * lateness[len(lateness) // 2] if lateness else 0.0,
        "p99_ms": 1000 * lateness[int(len(lateness) * 0.99)] if lateness else 0.0,
        "cpu_us_per_sample": 1e6 * (cpu1 - cpu0) / max(1, samples),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows, "batches": writer.stats.batches,
    }


def _worker_main(seconds: float, warmup: float, folder: str) -> None:
    """--worker: measure the ports read from stdin, print the figures as JSON."""
    ports = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(_measure(ports, seconds, warmup, folder))), flush=True)


def _sharded(ports: list[int], workers: int, seconds: float, warmup: float, folder: str) -> dict:
    """The service split over `workers` processes as `plugwatch run --workers` splits it (plug
    i to worker i % K, one database); figures summed, lateness percentiles over all reads."""
    from plugwatch.store import open_store

    open_store(f"sqlite:///{folder}/bench.db").close()  # schema first, as the parent does
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--worker", "--seconds", str(seconds), "--warmup",
         str(warmup), "--folder", folder], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True) for _ in range(workers)]
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(ports[i::workers]) + "\n")
        proc.stdin.close()
    parts = []
    for proc in procs:
        assert proc.stdout is not None
        parts.append(json.loads(proc.stdout.read()))
        proc.wait()
    lateness = sorted(x for part in parts for x in part["lateness"])
    samples = sum(p["samples"] for p in parts)
    return {
        "samples_per_s": sum(p["samples_per_s"] for p in parts),
        "missed": sum(p["missed"] for p in parts),
        "failures": sum(p["failures"] for p in parts), "skipped": sum(p["skipped"] for p in parts),
        "p50_ms": 1000 * lateness[len(lateness) // 2] if lateness else 0.0,
        "p99_ms": 1000 * lateness[int(len(lateness) * 0.99)] if lateness else 0.0,
        "cpu_us_per_sample": 1e6 * sum(p["cpu_s"] for p in parts) / max(1, samples),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts),
        "rows": sum(p["rows"] for p in parts), "batches": sum(p["batches"] for p in parts),
    }


def bench(n: int, seconds: float, warmup: float, workers: int = 1) -> dict:
    """One measurement with `n` plugs in fresh emulator processes (at most PER_EMULATOR each:
    a plug costs the emulator two file descriptors, a listener and a connection)."""
    sizes = [min(PER_EMULATOR, n - i) for i in range(0, n, PER_EMULATOR)]
    emulators = [subprocess.Popen([sys.executable, "-c", EMULATOR, str(size)],
                                  stdout=subprocess.PIPE, text=True) for size in sizes]
    try:
        ports = []
        for emulator in emulators:
            assert emulator.stdout is not None
            ports += json.loads(emulator.stdout.readline())
        with tempfile.TemporaryDirectory() as folder:
            if workers > 1:
                return _sharded(ports, workers, seconds, warmup, folder)
            return asyncio.run(_measure(ports, seconds, warmup, folder))
    finally:
        for emulator in emulators:
            emulator.terminate()
            emulator.wait(10)


def main() -> None:
    """Run the bench for each --plugs value and print one line of figures each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, nargs="+", default=[5000])
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=1,
                        help="service processes, as `plugwatch run --workers K` (RSS: the largest)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.seconds, args.warmup, args.folder)
        return
    print(f"service at 1 Hz, {args.seconds:g} s window after {args.warmup:g} s warm-up; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start, {args.workers} service process(es)")
    for n in args.plugs:
        r = bench(n, args.seconds, args.warmup, args.workers)
        print(f"{n:>6} plugs: {r['samples_per_s']:8.0f} samples/s  missed {r['missed']:>5}  "
              f"(in flight {r['skipped']})  failures {r['failures']:>4}  "
              f"lateness p50 {r['p50_ms']:6.1f} ms "
              f"p99 {r['p99_ms']:6.1f} ms  CPU {r['cpu_us_per_sample']:5.0f} µs/sample  "
              f"peak RSS {r['peak_rss_mb']:5.0f} MB  rows {r['rows']} in {r['batches']} batches",
              flush=True)


if __name__ == "__main__":
    main()
