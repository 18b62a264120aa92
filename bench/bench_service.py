"""The real service sampling N emulated plugs at 1 Hz: readings stored, missed, lateness, CPU, RAM.

    .venv/bin/python bench/bench_service.py [--plugs 1000 10000] [--seconds 20] [--repeats 3]
                                            [--transport tcp|udp] [--workers K]

For each N, emulated HS110v2 plugs are served by processes of their own, pinned to the last CPU;
the service (sampler + detectors + writer thread + SQLite in a temporary folder) runs in a process
pinned to CPU 0 (one process, one core), or in K processes as `plugwatch run --workers K` (not
pinned: K processes share the box with the emulators). Once the service samples, after a warm-up
(first contact with every plug) the window prints, per run and as medians over --repeats:

  stored/s    readings the writer committed to the database in the window, per second
  missed      planned reads in the window minus readings stored (skipped, failed, unfinished
              or not yet written)
  lateness    p50/p99 of read start - planned, and of read completion - planned
  CPU         service process CPU (all threads, writer included) per stored reading
  emulators   the emulator processes' CPU per answer, apart
  memory      resident memory the service added per plug (after warm-up) and peak RSS; with
              two or more N, per plug from the slope between the smallest and the largest,
              and how much of it Python's small-object allocator and malloc hold; --tracemalloc
              adds the Python heap per plug and where it is by allocation site
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _measure(plugs: list[list[Any]], emulators: list[int], args: argparse.Namespace
                   ) -> dict[str, Any]:
    # what every service costs whatever its plugs (the modules, an opened store) comes before
    # the baseline, so that the memory per plug is the plugs' own
    import tracemalloc

    import apscheduler.schedulers.asyncio  # noqa: F401

    import plugwatch.service.service  # noqa: F401
    from plugwatch.config import config_from_dict
    from plugwatch.emulator import raise_open_file_limit
    from plugwatch.store import open_store
    from plugwatch.testing import running_service

    raise_open_file_limit()
    folder = args.folder
    open_store(f"sqlite:///{folder}/bench.db").close()
    rss0, (py0, malloc0) = _rss(), benchlib.allocator_bytes()
    if args.tracemalloc:
        tracemalloc.start()
    config = config_from_dict({
        "database": f"sqlite:///{folder}/bench.db",
        "defaults": {"interval": args.interval, "timeout": 2.0},
        "plugs": [{"name": f"p{i}", "driver": "kasa", "host": f"{host}:{port}",
                   "transport": args.transport} for i, (host, port) in enumerate(plugs)],
    })
    seconds = args.seconds
    async with running_service(config) as service:
        started = time.monotonic()
        await service.started.wait()  # restored and sampling (slow on a loaded machine)
        start_s = time.monotonic() - started
        await asyncio.sleep(args.warmup)
        stats, writer, sampler = service.sampler.stats, service.writer, service.sampler
        rss1, (py1, malloc1) = _rss(), benchlib.allocator_bytes()
        traced = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
        if args.tracemalloc:
            _print_heap(tracemalloc.take_snapshot(), len(plugs))
        tracemalloc.stop()
        t0, cpu0 = time.time(), _cpu_s()
        emu0 = sum(benchlib.cpu_seconds(pid) for pid in emulators)
        done0, fail0, skip0, behind0 = stats.done, stats.failures, stats.skipped, stats.behind
        start0, end0 = stats.start_lateness.copy(), stats.done_lateness.copy()
        rows0, planned0 = writer.stats.readings, sampler.planned_reads(t0)
        await asyncio.sleep(seconds)
        t1, cpu1 = time.time(), _cpu_s()
        emu1 = sum(benchlib.cpu_seconds(pid) for pid in emulators)
        rows1, planned1 = writer.stats.readings, sampler.planned_reads(t1)
        done, failures = stats.done - done0, stats.failures - fail0
        skipped, behind = stats.skipped - skip0, stats.behind - behind0
        start, end = stats.start_lateness.since(start0), stats.done_lateness.since(end0)
        queued = len(writer._items)
    span = t1 - t0
    stored = rows1 - rows0
    planned = planned1 - planned0
    return {
        "n": len(plugs), "seconds": span, "start_s": start_s, "stored_per_s": stored / span,
        "stored": stored,
        "done_per_s": (done - failures) / span, "cores": (cpu1 - cpu0) / span,
        "planned": planned, "missed": max(0, planned - stored),
        "failures": failures, "skipped": skipped, "behind": behind, "queued": queued,
        "start_p50_ms": 1000 * start.percentile(50), "start_p99_ms": 1000 * start.percentile(99),
        "done_p50_ms": 1000 * end.percentile(50), "done_p99_ms": 1000 * end.percentile(99),
        "cpu_s": cpu1 - cpu0, "cpu_us": 1e6 * (cpu1 - cpu0) / max(1, stored),
        "emulator_s": emu1 - emu0, "answered": done - failures,
        "kb_per_plug": (rss1 - rss0) / 1024 / max(1, len(plugs)),
        "pymalloc_kb_per_plug": (py1 - py0) / 1024 / max(1, len(plugs)),
        "malloc_kb_per_plug": (malloc1 - malloc0) / 1024 / max(1, len(plugs)),
        "traced_kb_per_plug": traced / 1024 / max(1, len(plugs)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _print_heap(snapshot: Any, plugs: int, top: int = 25) -> None:
    """--tracemalloc: where the Python heap is, by allocation site, per plug (to stderr)."""
    import linecache

    root = str(Path(__file__).resolve().parent.parent) + "/"
    lines = [f"the Python heap by allocation site, per plug ({plugs} plugs):"]
    for stat in snapshot.statistics("lineno")[:top]:
        frame = stat.traceback[0]
        code = linecache.getline(frame.filename, frame.lineno).strip()
        lines.append(f"  {stat.size / plugs:7.1f} B {stat.count / plugs:5.2f} blocks  "
                     f"{frame.filename.removeprefix(root)}:{frame.lineno}  {code[:70]}")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _worker_main(args: argparse.Namespace) -> None:
    """--worker: measure the plugs read from stdin, print the figures as JSON."""
    if args.workers == 1:
        benchlib.pin(benchlib.client_cpu())
    plugs, emulators = json.loads(sys.stdin.readline())
    result = asyncio.run(_measure(plugs, emulators, args))
    print(json.dumps(result), flush=True)


def run_once(emulators: benchlib.Emulators, args: argparse.Namespace, interval: float
             ) -> dict[str, Any]:
    """One measurement: K fresh service processes over the emulators' plugs."""
    with tempfile.TemporaryDirectory() as folder:
        from plugwatch.store import open_store

        open_store(f"sqlite:///{folder}/bench.db").close()  # the schema first, as `run` does
        procs = [subprocess.Popen(
            [sys.executable, __file__, "--worker", "--seconds", str(args.seconds), "--warmup",
             str(args.warmup), "--folder", folder, "--transport", args.transport,
             "--workers", str(args.workers), "--interval", str(interval),
             *(["--tracemalloc"] if args.tracemalloc else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(args.workers)]
        for i, proc in enumerate(procs):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps([emulators.addresses[i::args.workers],
                                         [p.pid for p in emulators.procs]]) + "\n")
            proc.stdin.close()
        parts = []
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            if proc.wait() != 0 or not out.strip():
                raise SystemExit("a service process failed (its error is above)")
            parts.append(json.loads(out))
    return _combine(parts)


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum K processes' figures (lateness: the worst process's percentiles)."""
    total = {k: sum(p[k] for p in parts) for k in (
        "n", "stored_per_s", "stored", "done_per_s", "cores", "planned", "missed", "failures",
        "skipped", "behind", "queued", "cpu_s", "answered")}
    for key in ("start_p50_ms", "start_p99_ms", "done_p50_ms", "done_p99_ms", "peak_rss_mb",
                "start_s"):
        total[key] = max(p[key] for p in parts)
    for key in ("kb_per_plug", "traced_kb_per_plug", "pymalloc_kb_per_plug",
                "malloc_kb_per_plug"):
        total[key] = sum(p[key] * p["n"] for p in parts) / total["n"]
    total["cpu_us"] = 1e6 * total["cpu_s"] / max(1, total["stored"])
    total["missed_pct"] = 100 * total["missed"] / max(1, total["planned"])
    # every process measured the emulators' CPU over (about) the same window
    emulator_s = sum(p["emulator_s"] for p in parts) / len(parts)
    total["emulator_us"] = 1e6 * emulator_s / max(1, total["answered"])
    total["load"] = os.getloadavg()[0]
    return total


def line(n: int, r: dict[str, Any], label: str) -> str:
    """The figures of one run (or of the medians) on one line."""
    traced = f" ({r['traced_kb_per_plug']:.1f} traced)" if r["traced_kb_per_plug"] else ""
    return (f"{n:>6} plugs {label:<12} stored {r['stored_per_s']:7.0f}/s  missed "
            f"{r['missed_pct']:6.2f} % ({r['failures']:.0f} failed, {r['behind']:.0f} behind)  "
            f"read {r['done_per_s']:6.0f}/s, queued {r['queued']:6.0f}  "
            f"lateness start p50/p99 {r['start_p50_ms']:5.0f}/{r['start_p99_ms']:5.0f} ms, "
            f"done {r['done_p50_ms']:5.0f}/{r['done_p99_ms']:5.0f} ms  CPU {r['cpu_us']:5.1f} µs "
            f"at {r['cores']:.2f} cores (emulators {r['emulator_us']:4.1f})  "
            f"{r['kb_per_plug']:4.1f} KB/plug RSS{traced}, peak {r['peak_rss_mb']:4.0f} MB  "
            f"started in {r['start_s']:.1f} s  load {r['load']:.1f}")


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over the runs."""
    return {k: benchlib.median([r[k] for r in runs]) for k in runs[0]}


def main() -> None:
    """Run the bench for each --plugs value, --repeats times; print each run and the medians."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--plugs", type=int, nargs="+", default=[5000])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads")
    parser.add_argument("--overload", type=float, default=0.0, metavar="F",
                        help="also run each repeat at F times the rate (interval / F) and print "
                             "its stored readings/s against the base run's")
    parser.add_argument("--transport", choices=["tcp", "udp"], default="tcp")
    parser.add_argument("--workers", type=int, default=1,
                        help="service processes, as `plugwatch run --workers K`")
    parser.add_argument("--per-emulator", type=int, default=benchlib.PER_EMULATOR,
                        help="plugs per emulator process")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also count the Python heap per plug and print where it is by "
                             "allocation site (slows the service: its CPU and lateness figures "
                             "are then not comparable)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args)
        return
    print(benchlib.header(f"bench_service: the service, every plug every {args.interval:g} s over "
                          f"{args.transport.upper()}, {args.workers} service process(es), "
                          f"{args.seconds:g} s windows after {args.warmup:g} s"))
    print(f"commit {benchlib.commit()}")
    udp = args.transport == "udp"
    # plugs -> median KB the service added: RSS, Python's allocator, malloc (for the slopes)
    rss: dict[int, tuple[float, float, float]] = {}
    for n in args.plugs:
        runs, over = [], []
        with benchlib.Emulators(n, udp=udp, tcp=not udp, per_process=args.per_emulator) as emu:
            for i in range(args.repeats):
                runs.append(run_once(emu, args, args.interval))
                print(line(n, runs[-1], f"run {i + 1}"), flush=True)
                if args.overload:
                    over.append(run_once(emu, args, args.interval / args.overload))
                    print(line(n, over[-1], f"x{args.overload:g} run {i + 1}"), flush=True)
        base = medians(runs)
        rss[n] = (base["kb_per_plug"] * n, base["pymalloc_kb_per_plug"] * n,
                  base["malloc_kb_per_plug"] * n)
        if args.repeats > 1:
            print(line(n, base, "median"), flush=True)
        if over:
            top = medians(over)
            print(line(n, top, f"x{args.overload:g} median"), flush=True)
            print(f"{n:>6} plugs at {args.overload:g}x the rate (every "
                  f"{args.interval / args.overload:g} s): stored {top['stored_per_s']:.0f}/s = "
                  f"{100 * top['stored_per_s'] / max(1.0, base['stored_per_s']):.0f} % of the "
                  f"{base['stored_per_s']:.0f}/s stored at every {args.interval:g} s (where "
                  f"{base['missed_pct']:.2f} % were missed)", flush=True)
            # on a shared machine the two runs get different shares of a core: per core-second
            per_core = [r["stored_per_s"] / max(1e-9, r["cores"]) for r in (base, top)]
            print(f"{n:>6} plugs per core-second used: {per_core[1]:.0f} stored at "
                  f"{args.overload:g}x against {per_core[0]:.0f} = "
                  f"{100 * per_core[1] / max(1.0, per_core[0]):.0f} %", flush=True)
    if len(rss) > 1:  # what one more plug costs, without what every service costs
        lo, hi = min(rss), max(rss)
        total, pymalloc, malloc = ((b - a) / (hi - lo)
                                   for a, b in zip(rss[lo], rss[hi], strict=True))
        print(f"memory per plug from {lo} to {hi} plugs (RSS added, medians): {total:.1f} KB "
              f"(Python's allocator {pymalloc:.1f} KB, malloc {malloc:.1f} KB)", flush=True)


if __name__ == "__main__":
    main()
