"""Several instances sharing plugs by leases on one PostgreSQL: what a failover costs.

    .venv/bin/python bench/bench_cluster.py [--plugs 600] [--instances 3] [--lease 5]
                                            [--interval 1] [--repeats 3] [--postgres URL]

Each repeat starts `--instances` real `plugwatch run --cluster` processes over `--plugs`
emulated Kasa plugs (in processes of their own, their CPU reported apart) in a scratch schema,
waits until every plug is held and sampled, lets them run, kills one with SIGKILL and measures
from the readings stored (what a user gets):

- time to full coverage: from the kill until every one of the killed instance's plugs has a
  stored reading again;
- the longest gap between two stored readings of an orphaned plug (what the failover cost it),
  against the interval for the plugs that did not move;
- readings stored per second over the whole run, against the planned rate;
- after the kill, how the plugs are spread over the survivors;
- the rules state following the plug: every plug has a rule `for: --for` seconds pending on its
  first state (on) when the instance is killed; each alert must reach a local HTTP receiver once,
  and its lateness (outbox row created, and arrival, after trigger + for) is reported for the
  orphaned plugs against the others.
Prints medians of the repeats with the load average.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench_alerts import receiver
from benchlib import Emulators, header, median
from sqlalchemy import text

from plugwatch.store import open_store
from plugwatch.store.leases import live_holders
from plugwatch.store.scratch import scratch_schema

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def config_text(url: str, addresses: list[tuple[str, int]], lease: float, interval: float,
                hook: int) -> str:
    plugs = "".join(f"  - {{name: b{i}, host: '{host}:{port}'}}\n"
                    for i, (host, port) in enumerate(addresses))
    return (f'database: "{url}"\ncluster: {{lease: {lease}}}\nretention: forever\n'
            f"defaults: {{interval: {interval}, timeout: {min(2.0, interval)}}}\nplugs:\n{plugs}"
            f"targets: {{hook: 'json://127.0.0.1:{hook}/'}}\nrules: rules.yaml\n")


def rules_text(for_s: float) -> str:
    return (f'- {{name: held, when: {{to: "on"}}, for: {for_s:g}s, notify: hook, '
            f'title: "{{{{ plug }}}}"}}\n')


def wait(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    raise SystemExit(f"{what}: not within {timeout:.0f} s")


def one_run(args: argparse.Namespace, emulators: Emulators, url: str) -> dict[str, float]:
    names = [f"b{i}" for i in range(args.plugs)]
    arrivals: dict[str, float] = {}
    received: Counter[str] = Counter()
    server = receiver(arrivals, received)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "plugwatch.yaml"
        config.write_text(config_text(url, emulators.addresses, args.lease, args.interval,
                                      server.server_address[1]))
        (Path(tmp) / "rules.yaml").write_text(rules_text(args.for_s))
        store = open_store(url)
        procs = [subprocess.Popen([sys.executable, "-m", "plugwatch", "-q", "run", "--config",
                                   str(config)], stdout=subprocess.DEVNULL)
                 for _ in range(args.instances)]
        try:
            def holders() -> dict[str, str]:
                with store.engine.connect() as conn:
                    return live_holders(conn)

            def sampled_since(ts: float) -> int:
                with store.engine.connect() as conn:
                    return conn.execute(text(
                        "SELECT count(DISTINCT plug_id) FROM readings WHERE ts > :ts"),
                        {"ts": ts}).scalar_one()

            def balanced() -> bool:
                spread = Counter(o for n, o in holders().items() if n.startswith("plug:"))
                share = -(-args.plugs // args.instances)
                return sum(spread.values()) == args.plugs and max(spread.values()) <= share

            wait(balanced, 180, "every plug held, a fair share each")
            started = time.time()
            wait(lambda: sampled_since(started) == args.plugs, 60, "every plug sampled")
            time.sleep(3 * args.interval)
            owner_of = holders()
            victim = procs[0]
            orphans = {n for n in names if f"-{victim.pid}-" in owner_of.get(f"plug:{n}", "")}
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed = time.time()

            def orphans_back() -> bool:
                with store.engine.connect() as conn:
                    back = conn.execute(text(
                        "SELECT count(DISTINCT p.name) FROM readings r JOIN plugs p "
                        "ON p.id = r.plug_id WHERE r.ts > :ts AND p.name = ANY(:names)"),
                        {"ts": killed, "names": sorted(orphans)}).scalar_one()
                return back == len(orphans)

            coverage_s = wait(orphans_back, 10 * args.lease + 60, "the orphans sampled again")
            time.sleep(3 * args.interval)
            ended = time.time()
            spread = Counter(owner for name, owner in holders().items() if name.startswith("plug:"))
            with store.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT p.name, r.ts FROM readings r JOIN plugs p ON p.id = r.plug_id "
                    "WHERE r.ts BETWEEN :a AND :b ORDER BY p.name, r.ts"),
                    {"a": started, "b": ended}).all()
            triggers = {t.plug: t.ts for t in reversed(store.transitions())}  # each one's first
            last_due = max(triggers.values()) + args.for_s
            wait(lambda: len(arrivals) >= args.plugs, max(0.0, last_due - time.time()) + 60,
                 "every alert delivered")
            time.sleep(3.0)  # a duplicate would come now
            created = {a["plug"]: a["created_at"] for a in store.alerts()}
            sent = len(store.alerts())
            delivered = sum(received.values())
        finally:
            server.shutdown()
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(60)
            store.close()
    stamps: dict[str, list[float]] = {}
    for name, ts in rows:
        stamps.setdefault(name, []).append(ts)

    def worst_gap(group: set[str]) -> float:
        gaps = [b - a for n in group for a, b in itertools.pairwise(stamps.get(n, []))]
        return max(gaps, default=0.0)

    def lateness(group: set[str], at: dict[str, float]) -> float:
        return median([at[n] - triggers[n] - args.for_s for n in group if n in at])

    pending = sum(1 for n in orphans if triggers[n] + args.for_s > killed)
    return {
        "alerts": float(sent),
        "delivered": float(delivered),
        "pending_at_kill": float(pending),
        "orphan_created_late_s": lateness(orphans, created),
        "stayed_created_late_s": lateness(set(names) - orphans, created),
        "orphan_arrived_late_s": lateness(orphans, arrivals),
        "stayed_arrived_late_s": lateness(set(names) - orphans, arrivals),
        "orphan_created_worst_s": max(created[n] - triggers[n] - args.for_s for n in orphans),
        "coverage_s": coverage_s,
        "orphans": float(len(orphans)),
        "orphan_gap_s": worst_gap(orphans),
        "stayed_gap_s": worst_gap(set(names) - orphans),
        "stored_per_s": len(rows) / (ended - started),
        "planned_per_s": args.plugs / args.interval,
        "survivor_min": float(min(spread.values(), default=0)),
        "survivor_max": float(max(spread.values(), default=0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=600)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--lease", type=float, default=5.0, help="lease in seconds (default 5)")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--for", dest="for_s", type=float, default=60.0,
                        help="the rule's for: in seconds, pending at the kill (default 60)")
    parser.add_argument("--postgres", default=os.environ.get("PLUGWATCH_BENCH_POSTGRES", PG))
    args = parser.parse_args()
    print(header(f"bench_cluster: {args.instances} instances x {args.plugs} plugs at "
                 f"{1 / args.interval:g} Hz, lease {args.lease:g} s, kill -9 of one"))
    results = []
    with Emulators(args.plugs) as emulators:
        for k in range(args.repeats):
            with scratch_schema(args.postgres, prefix="pw_bench") as url:
                before = emulators.cpu_seconds()
                result = one_run(args, emulators, url)
                result["emulator_cpu_s"] = emulators.cpu_seconds() - before
            results.append(result)
            print(f"  run {k + 1}: full coverage {result['coverage_s']:.1f} s after the kill "
                  f"({result['orphans']:.0f} orphaned plugs), worst gap of an orphan "
                  f"{result['orphan_gap_s']:.1f} s vs {result['stayed_gap_s']:.1f} s for the "
                  f"others; {result['stored_per_s']:.0f} readings stored/s of "
                  f"{result['planned_per_s']:.0f} planned; survivors hold "
                  f"{result['survivor_min']:.0f}-{result['survivor_max']:.0f} plugs; "
                  f"emulators {result['emulator_cpu_s']:.1f} CPU s", flush=True)
            print(f"         alerts: {result['alerts']:.0f} in the outbox, "
                  f"{result['delivered']:.0f} delivered, for {args.plugs} plugs "
                  f"({result['pending_at_kill']:.0f} orphans' timers pending at the kill); "
                  f"created after trigger + for: median {result['orphan_created_late_s']:.2f} s "
                  f"(orphans, worst {result['orphan_created_worst_s']:.2f} s) vs "
                  f"{result['stayed_created_late_s']:.2f} s; arrived: "
                  f"{result['orphan_arrived_late_s']:.2f} s vs "
                  f"{result['stayed_arrived_late_s']:.2f} s", flush=True)
    med = {key: median([r[key] for r in results]) for key in results[0]}
    print(f"median of {len(results)}: full coverage {med['coverage_s']:.1f} s after the kill "
          f"(lease {args.lease:g} s), worst orphan gap {med['orphan_gap_s']:.1f} s, "
          f"{med['stored_per_s']:.0f}/{med['planned_per_s']:.0f} readings stored/s; orphans' "
          f"alerts created {med['orphan_created_late_s']:.2f} s after their deadline "
          f"(others {med['stayed_created_late_s']:.2f} s), arrived "
          f"{med['orphan_arrived_late_s']:.2f} s (others {med['stayed_arrived_late_s']:.2f} s)")


if __name__ == "__main__":
    main()
