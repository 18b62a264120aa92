"""Replay throughput end to end: CSV file -> read_trace -> detect.replay -> events.

Goal (issue 3): >= 1,000,000 samples per second from CSV. Writes synthetic traces in the three time
layouts users have (unix seconds, ISO 8601, tracebase's dd/mm/yyyy strftime) into a temporary
directory, then times the median CPU time of --repeat runs of each, split into reading and
detecting (CPU time, not wall time: the machine is shared), with the load average printed.

    .venv/bin/python bench/bench_replay.py [--samples 2000000] [--repeat 3]
    .venv/bin/python bench/bench_replay.py --year     # 31,536,000 samples built in memory

--year generates a year of 1 s samples as arrays (no CSV) and times detect.replay alone, printing
samples/s and the peak resident memory while it runs (trace arrays included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

from plugwatch.detect import replay
from plugwatch.detect.kinds import kind_named
from plugwatch.model import DetectorSettings
from plugwatch.traces.reader import CsvOptions, Trace, read_trace

START = 1_420_070_400  # 2015-01-01T00:00:00Z


def washer_power(n: int, seed: int = 7) -> np.ndarray:
    """1 s samples: ~0.6-0.8 W standby with noise and 0 W dips, a 2 h wash every 8 h."""
    rng = np.random.default_rng(seed)
    power = rng.choice([0.6, 0.74], size=n) + rng.normal(0, 0.05, n)
    power[rng.random(n) < 0.01] = 0.3
    t = np.arange(n)
    washing = (t % (8 * 3600)) < 2 * 3600
    heating = washing & ((t % 1800) < 600)
    power[washing] = 150 + rng.normal(0, 20, int(washing.sum()))
    power[heating] = 2000 + rng.normal(0, 30, int(heating.sum()))
    return np.round(np.clip(power, 0, None), 1)


def write_csv(path: Path, times: list[str], power: np.ndarray, header: str | None, sep: str
              ) -> None:
    """The trace as text, one row per sample."""
    rows = [f"{t}{sep}{p}" for t, p in zip(times, power.tolist(), strict=True)]
    text = ((header + "\n") if header else "") + "\n".join(rows) + "\n"
    path.write_text(text, encoding="utf-8")


def layouts(n: int) -> dict[str, tuple[list[str], str | None, str, CsvOptions]]:
    """Time column text and reading options for each layout."""
    seconds = START + np.arange(n)
    iso = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    day_first = [f"{s[8:10]}/{s[5:7]}/{s[0:4]} {s[11:19]}" for s in iso.tolist()]
    return {
        "unix": ([str(s) for s in seconds.tolist()], "time,power", ",",
                 CsvOptions(time_format="unix")),
        "iso": ([str(s) for s in iso.tolist()], "time,power", ",", CsvOptions(time_format="iso")),
        "dd/mm/yyyy": (day_first, None, ";",
                       CsvOptions(time_format="%d/%m/%Y %H:%M:%S", delimiter=";", header=False)),
    }


def best(repeat: int, job: Callable[[], object]) -> tuple[float, object]:
    """The median CPU time (process time: the machine is shared) of `repeat` runs of job(),
    and its last result."""
    times, result = [], None
    for _ in range(repeat):
        began = time.process_time()
        result = job()
        times.append(time.process_time() - began)
    return statistics.median(times), result


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def year(repeat: int) -> None:
    """A year at 1 Hz generated in memory: detect.replay throughput and its peak memory (Linux)."""
    n = 365 * 86400
    trace = Trace(Path("generated"), (START + np.arange(n)).astype(np.float64), washer_power(n))
    before = _vm_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    detect_s, events = best(repeat, lambda: replay("bench", trace, DetectorSettings()))
    peak = _vm_kib("VmHWM")
    print(f"{n:,} samples (a year at 1 Hz), median CPU time of {repeat}; detector defaults")
    print(f"  detect {detect_s:6.2f} s = {n / detect_s / 1e6:5.2f} M samples/s, "
          f"{len(events)} events; RSS {before / 1024:5.0f} MB with the trace loaded, "
          f"peak {peak / 1024:5.0f} MB during replay")  # type: ignore[arg-type]


def main() -> None:
    """Write the traces, time them, print one line per layout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--year", action="store_true", help="a year in memory, detect only")
    parser.add_argument("--kind", default="washer", help="appliance kind of the settings")
    args = parser.parse_args()
    print(f"bench_replay at commit {benchlib.commit()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.year:
        year(args.repeat)
        return
    n = args.samples
    power = washer_power(n)
    settings = kind_named(args.kind).settings()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{n:,} samples per trace, median CPU time of {args.repeat}; kind {args.kind}; "
          f"load average {load} (shared 2-core machine)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (times, header, sep, options) in layouts(n).items():
            path = Path(tmp) / f"{name.replace('/', '')}.csv"
            write_csv(path, times, power, header, sep)
            size_mb = path.stat().st_size / 1e6
            read_s, trace = best(args.repeat, lambda p=path, o=options: read_trace(p, o))
            assert len(trace) == n, f"{name}: read {len(trace)} of {n} rows"  # type: ignore[arg-type]
            detect_s, events = best(args.repeat, lambda t=trace: replay("bench", t, settings))
            total = read_s + detect_s
            print(f"{name:>11}: {size_mb:6.1f} MB  read {read_s:6.3f} s  detect {detect_s:6.3f} s"
                  f"  end to end {n / total / 1e6:5.2f} M samples/s"
                  f"  (detect alone {n / detect_s / 1e6:5.1f} M/s, {len(events)} events)")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
