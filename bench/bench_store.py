"""Store write throughput: readings/s through `Store.write_batch`, as the service's writer does it.

    .venv/bin/python bench/bench_store.py [--plugs 1000] [--seconds 10] [--postgres URL]

Batches are written until `--seconds` of writing have passed (10 s at least: a figure from a
fraction of a second is mostly noise on a shared machine); the figures are readings/s of wall
time inside write_batch and this process's CPU per reading (SQLite runs in-process; PostgreSQL's
server CPU is not included).

Each batch holds one reading per plug plus one snapshot per plug (the service's worst case: every
plug's snapshot is due) and, every 10th batch, a transition per plug. The SQLite file lives in a
temporary folder; PostgreSQL (when reachable) runs in a throw-away schema. Also times the
retention purge and the history queries on the table that was written.

    .venv/bin/python bench/bench_store.py --writer [--plugs 10000] [--seconds 10] [--repeats 3]

With --writer, the service's Writer (its thread, Backlog and batches) is fed as the service feeds
it, without plugs or an event loop: every plug's reading each second, spread over the second, and
a real detector snapshot of each plug every 10 s (the service's period without state changes),
plug i's in the seconds i mod 10 (spread out, as state changes leave them: a page of the
snapshots table per snapshot; plugs started together have theirs due in the same second).
After a 3 s warm-up it prints the writer thread's CPU (/proc) per stored reading, per run and
the median.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

from plugwatch.model import Reading, State, Transition
from plugwatch.store import Batch, Store, open_store
from plugwatch.store.scratch import scratch_schema

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def batches(plugs: list[str], t0: float) -> Iterator[Batch]:
    """One-second batches for `plugs`, without end."""
    for i in itertools.count():
        ts = t0 + i
        batch = Batch(
            readings=[(p, Reading(ts + j * 1e-4, 100.0 + j % 7, True, 0.001 * i))
                      for j, p in enumerate(plugs)],
            snapshots={p: (ts, {"state": "on", "since": t0, "window": [100.0] * 5}) for p in plugs},
        )
        if i % 10 == 5:
            batch.transitions = [Transition(p, ts, State.STANDBY, State.ON, "power", 100.0)
                                 for p in plugs]
        yield batch


def _open(url: str, n_plugs: int) -> tuple[Store, list[str]]:
    """The store at `url` with plugs p0 .. p{n_plugs - 1} registered, and their names."""
    store = open_store(url)
    plugs = [f"p{i}" for i in range(n_plugs)]
    store.ensure_plugs([type("P", (), {"name": p, "driver": "kasa", "address": p, "tags": ()})
                        for p in plugs])
    return store, plugs


def run(url: str, label: str, n_plugs: int, seconds: float) -> None:
    """Write for `seconds`, then query and purge on `url`; print the figures."""
    store, plugs = _open(url, n_plugs)
    t0 = 1_763_900_000.0
    written: list[Batch] = []
    elapsed = cpu = 0.0
    for batch in batches(plugs, t0):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        store.write_batch(batch)
        elapsed += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        written.append(batch)
        if elapsed >= seconds:
            break
    rows = n_plugs * len(written)
    again = time.perf_counter()
    store.write_batch(written[5])  # re-writing a batch: every row conflicts, nothing is added
    rewrite = time.perf_counter() - again
    q = time.perf_counter()
    history = store.transitions(plug="p1")
    readings = store.readings("p1")
    status = store.status()
    query = time.perf_counter() - q
    p = time.perf_counter()
    purged = store.purge_readings(t0 + len(written) / 2)
    purge = time.perf_counter() - p
    store.close()
    print(f"{label:<10} {rows:>8} readings in {elapsed:5.1f} s = {rows / elapsed:>7.0f}/s, "
          f"{1e6 * cpu / rows:5.1f} µs CPU each ({n_plugs} per batch + snapshots; load "
          f"{benchlib.load()}); re-write of one batch {rewrite * 1000:.0f} ms; "
          f"history+readings+status ({len(history)}, {len(readings)}, {len(status)} rows) "
          f"{query * 1000:.0f} ms; purge of {purged} rows {purge * 1000:.0f} ms", flush=True)


def run_writer(url: str, label: str, n_plugs: int, seconds: float) -> float:
    """Feed a Writer `n_plugs` readings a second for `seconds` (after a warm-up); print and
    return its thread's CPU per stored reading in µs."""
    from plugwatch.detect.fsm import Detector
    from plugwatch.model import DetectorSettings
    from plugwatch.service.writer import Writer

    store, plugs = _open(url, n_plugs)
    detector, t0 = Detector("p", DetectorSettings()), time.time()
    for k in range(30):
        detector.feed(Reading(t0 - 30 + k * 1.0003, 100.0 + k % 7 * 0.37, True, 0.01 * k))
    snapshot = detector.snapshot()
    writer = Writer(store)
    writer.start()
    stat = Path(f"/proc/self/task/{writer._thread.native_id}/stat")

    def thread_cpu() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    started, warmup, mark = time.monotonic(), 3.0, None
    for second in itertools.count():
        if mark is None and second >= warmup:
            mark = thread_cpu(), writer.stats.readings
        if second >= warmup + seconds:
            break
        ts = t0 + second
        for tenth in range(10):  # the sampler spreads each second's reads over the second
            for i in range(tenth * n_plugs // 10, (tenth + 1) * n_plugs // 10):
                due = (second + i) % 10 == 0
                writer.put((plugs[i], Reading(ts + i * 1e-5, 100.0 + i % 7, True, 0.001 * second),
                            (), (), (ts, {**snapshot, "since": ts - i}) if due else None, None))
            time.sleep(max(0.0, started + second + (tenth + 1) / 10 - time.monotonic()))
    assert mark is not None
    cpu, rows = thread_cpu() - mark[0], writer.stats.readings - mark[1]
    writer.close(30.0)
    store.close()
    per_row = 1e6 * cpu / max(1, rows)
    print(f"{label:<10} writer thread {per_row:5.1f} µs CPU per stored reading ({rows} readings "
          f"in {seconds:g} s, {n_plugs} plugs at 1 Hz, a snapshot per plug every 10 s; load "
          f"{benchlib.load()})", flush=True)
    return per_row


def _pg_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), 1):
        return True
    return False


def main() -> None:
    """Parse arguments and run the bench on SQLite and (if reachable) PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="write for this long (time inside write_batch), 10 s at least")
    parser.add_argument("--postgres", default=PG)
    parser.add_argument("--writer", action="store_true",
                        help="feed the service's Writer at --plugs readings/s instead")
    parser.add_argument("--repeats", type=int, default=1, help="runs per database (--writer)")
    args = parser.parse_args()
    args.seconds = max(10.0, args.seconds)
    if args.writer:
        print(benchlib.header(f"bench_store --writer: the Writer fed {args.plugs} readings/s, "
                              f"{args.seconds:g} s windows"))
    else:
        print(benchlib.header(f"bench_store: Store.write_batch, {args.plugs} readings + "
                              f"snapshots per batch, {args.seconds:g} s of writing per database"))
    print(f"commit {benchlib.commit()}")

    databases: list[tuple[str, Callable[[], contextlib.AbstractContextManager[str]]]] = [
        ("sqlite", _sqlite_file)]
    if _pg_up():
        databases.append(("postgresql", lambda: scratch_schema(args.postgres, prefix="pw_bench")))
    else:
        print("postgresql not reachable on 127.0.0.1:5432: skipped")
    for label, database in databases:
        if not args.writer:
            with database() as url:
                run(url, label, args.plugs, args.seconds)
            continue
        figures = []
        for _ in range(args.repeats):  # each run on a new database
            with database() as url:
                figures.append(run_writer(url, label, args.plugs, args.seconds))
        if args.repeats > 1:
            print(f"{label:<10} median {benchlib.median(figures):5.1f} µs per stored reading",
                  flush=True)


@contextlib.contextmanager
def _sqlite_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.db"


if __name__ == "__main__":
    main()
