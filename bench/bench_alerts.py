"""Alert latency: an emulated plug's step change -> the push arriving at a local HTTP receiver.

    .venv/bin/python bench/bench_alerts.py [--plugs 20] [--steps 20] [--interval 1] [--dwell-on 2]

Runs the real service (Kasa driver over TCP, SQLite, the rules engine, the outbox sender,
apprise json://) with one rule `to: on`, over emulated plugs in processes of their own (pinned to
the last CPU, their CPU printed apart, as in every bench). --steps of the plugs (all of them, at
most 20, by default) step from 2 W to 1000 W, each at its own moment, the steps spread over
--spread seconds; the others stay in standby, so --plugs 5000 measures the latency of a few alerts
in a service sampling 5,000 plugs (not of 5,000 notifications at once). Latency = arrival at the
receiver - the step. Printed against the configured dwell + interval, the least a detector with
that dwell can do, with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

from plugwatch.config import config_from_dict
from plugwatch.model import DetectorSettings
from plugwatch.service.alerting import Alerting
from plugwatch.store import open_store
from plugwatch.testing import running_service

RULE = '- {name: switched-on, when: {to: "on"}, notify: phone, title: "{{ plug }}"}\n'


def receiver(arrivals: dict[str, float], counts: Counter[str] | None = None,
             ) -> ThreadingHTTPServer:
    """A local JSON receiver noting when each plug's alert (its title) first arrived, and in
    `counts` how many times."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrivals.setdefault(body["title"], time.time())
            if counts is not None:
                counts[body["title"]] += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def main(args: argparse.Namespace) -> None:
    arrivals: dict[str, float] = {}
    server = receiver(arrivals)
    # every plug settles in standby first (more plugs take longer to contact and restore)
    start = time.time() + 4.0 + args.plugs / 1000
    stepping = min(args.plugs, args.steps or 20)
    names = [f"plug{i:05d}" for i in range(args.plugs)]
    every = max(1, args.plugs // stepping)  # the stepping plugs, spread over the emulators
    steps = {names[k * every]: start + k * args.spread / stepping for k in range(stepping)}
    never = start + 1e9
    emulators = benchlib.Emulators(args.plugs, steps=[steps.get(n, never) for n in names])
    e0 = emulators.cpu_seconds()
    settings = DetectorSettings(window_s=args.window, on_w=10.0, on_band_w=2.0,
                                dwell_on_s=args.dwell_on, dwell_standby_s=1.0, dwell_off_s=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rules.yaml").write_text(RULE, encoding="utf-8")
        config = config_from_dict({
            "database": f"sqlite:///{tmp}/bench.db",
            "defaults": {"interval": args.interval, "timeout": 0.5},
            "plugs": [{"name": n, "driver": "kasa", "host": f"{host}:{port}"}
                      for n, (host, port) in zip(names, emulators.addresses, strict=True)],
            "targets": {"phone": f"json://127.0.0.1:{server.server_address[1]}/"},
            "rules": str(Path(tmp) / "rules.yaml"),
        }, detector=settings)
        store = open_store(config.database)
        alerting = Alerting.from_config(config, store)
        stop = asyncio.Event()
        deadline = max(steps.values()) + args.dwell_on + args.interval * 3 + 10
        async with running_service(config, store, on_events=alerting.on_events):
            task = asyncio.create_task(alerting.run(stop))
            while len(arrivals) < len(steps) and time.time() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await task
        store.close()
    emulator_s = emulators.cpu_seconds() - e0
    emulators.stop()
    server.shutdown()
    latencies = sorted(arrivals[n] - t for n, t in steps.items() if n in arrivals)
    floor = args.dwell_on + args.interval
    print(f"plugs {args.plugs} ({len(steps)} stepping), interval {args.interval} s, "
          f"dwell_on {args.dwell_on} s, window {args.window}: {len(latencies)}/{len(steps)} "
          f"alerts arrived; emulators {emulator_s:.1f} CPU s apart; load average now "
          f"{benchlib.load()}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(f"latency p50 {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
              f"max {latencies[-1]:.2f} s; dwell + interval = {floor:.2f} s "
              f"(p50 overhead {statistics.median(latencies) - floor:+.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=0,
                        help="how many plugs step (default: all, at most 20)")
    parser.add_argument("--interval", type=float, default=1.0, help="sampling interval, s")
    parser.add_argument("--dwell-on", type=float, default=2.0, help="on dwell, s")
    parser.add_argument("--window", type=float, default=0.0, help="moving average window, s")
    parser.add_argument("--spread", type=float, default=10.0, help="steps spread over s")
    print(benchlib.header("bench_alerts: plug step -> push at a local HTTP receiver"))
    print(f"commit {benchlib.commit()}")
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
