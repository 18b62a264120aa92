"""What observability costs: per reading (metrics counters, InfluxDB line), per scrape of
/metrics at 10,000 plugs, and InfluxDB write throughput against a real influxd.

    .venv/bin/python bench/bench_observe.py [--plugs 10000] [--runs 5] [--influx-points 300000]

Figures are CPU seconds of this process (time.process_time), medians of --runs runs; the load
average is printed with them (the machine is shared). influxd's own CPU is read from /proc and
reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugwatch.model import Reading


def load() -> str:
    """The load average, as uptime shows it."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def per_reading_us(plugs: int, rounds: int, listener_of: str) -> float:
    """CPU µs per reading handed to one listener, readings round-robin over `plugs` plugs."""
    from plugwatch.config.outputs import InfluxSection
    from plugwatch.outputs.influx import InfluxOutput
    from plugwatch.service.meters import ServiceMeters

    names = [f"plug-{i}" for i in range(plugs)]
    now = time.time()
    if listener_of == "metrics":
        listener = ServiceMeters(names, clock=time.time).on_sample
    elif listener_of == "influxdb":
        out = InfluxOutput(InfluxSection(url="http://127.0.0.1:1", database="x",
                                         buffer=10_000_000))
        listener = out.on_sample
    else:
        def listener(plug: str, sample: object) -> None:
            return None
    samples = [Reading(now - 0.004, 100.0 + i % 7, True, 12.5 + i, 230.1, 0.45)
               for i in range(plugs)]
    pairs = list(zip(names, samples, strict=True))
    cpu = time.process_time()
    for _ in range(rounds):
        for name, sample in pairs:
            listener(name, sample)
    return (time.process_time() - cpu) / (rounds * plugs) * 1e6


def scrape_cost(plugs: int) -> tuple[float, int]:
    """(CPU s, bytes) of one /metrics rendering for a Service with `plugs` plugs that have read."""
    from plugwatch.config import config_from_dict
    from plugwatch.outputs.live import LiveView
    from plugwatch.outputs.metrics import ServiceCollector, render
    from plugwatch.service.meters import ServiceMeters
    from plugwatch.service.service import Service

    folder = tempfile.mkdtemp()
    config = config_from_dict({
        "database": f"sqlite:///{folder}/bench.db",
        "plugs": [{"name": f"plug-{i}", "host": f"127.0.0.1:{10000 + i % 50000}"}
                  for i in range(plugs)]})
    from plugwatch.store import open_store

    store = open_store(config.database)
    meters = ServiceMeters([p.name for p in config.plugs])
    service = Service(config, store, sample_listeners=[meters.on_sample],
                      listeners=[meters.on_event])
    now = time.time()
    for k in range(3):
        for plug in config.plugs:
            service.handle_sample(plug.name, Reading(now + k, 50.0, True, 1.0, 230.0, 0.2))
    service.started.set()
    collector = ServiceCollector(LiveView(service, meters))
    render(collector)  # warm imports
    cpu = time.process_time()
    body = render(collector)
    spent = time.process_time() - cpu
    store.close()
    return spent, len(body)


async def influx_throughput(points: int, plugs: int) -> dict[str, float]:
    """Points/s and CPU per point (ours, influxd's) writing `points` readings to a real influxd."""
    from plugwatch.config.outputs import InfluxSection
    from plugwatch.outputs.influx import InfluxOutput
    from tests.influx_server import InfluxServer

    folder = Path(tempfile.mkdtemp())
    server = InfluxServer(folder / "influxdb")
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.query, "CREATE DATABASE plugwatch")
    try:
        out = InfluxOutput(InfluxSection(url=server.url, database="plugwatch", flush=0.2,
                                         buffer=points))
        stop = asyncio.Event()
        task = asyncio.create_task(out.run(stop))
        t0 = 1_700_000_000.0
        cpu, wall, influx_cpu = time.process_time(), time.perf_counter(), _proc_cpu(server)
        for i in range(points):
            out.on_sample(f"plug-{i % plugs}", Reading(t0 + i // plugs, 100.0 + i % 7, True,
                                                       1.0 + i * 1e-6, 230.0, 0.43))
            if i % 5000 == 0:
                await asyncio.sleep(0)  # like the live service: the sender runs in between
        while out.written < points:
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        influx_cpu = _proc_cpu(server) - influx_cpu
        stop.set()
        await task
        return {"points_per_s": points / wall, "our_cpu_us_per_point": cpu / points * 1e6,
                "influxd_cpu_us_per_point": influx_cpu / points * 1e6,
                "dropped": out.dropped + out.rejected}
    finally:
        await asyncio.to_thread(server.stop)


def _proc_cpu(server: object) -> float:
    proc = getattr(server, "proc", None)
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--influx-points", type=int, default=300_000)
    args = parser.parse_args()
    print(f"load average before: {load()}  (2 cores, shared machine)")
    for what in ("nothing", "metrics", "influxdb"):
        figures = [per_reading_us(args.plugs, 20, what) for _ in range(args.runs)]
        print(f"per reading, listener = {what:<8}: median {statistics.median(figures):.3f} µs "
              f"CPU (runs: {', '.join(f'{f:.3f}' for f in figures)})  load {load()}")
    scrapes = [scrape_cost(args.plugs) for _ in range(max(3, args.runs // 2))]
    cpu = statistics.median(s for s, _ in scrapes)
    print(f"/metrics at {args.plugs} plugs: median {cpu * 1000:.0f} ms CPU per scrape, "
          f"{scrapes[0][1] / 1e6:.1f} MB; at a 15 s scrape interval and 1 Hz sampling "
          f"{cpu / (15 * args.plugs) * 1e6:.2f} µs per reading  load {load()}")
    if args.influx_points:
        runs = [asyncio.run(influx_throughput(args.influx_points, 1000))
                for _ in range(max(3, args.runs // 2))]
        for key in ("points_per_s", "our_cpu_us_per_point", "influxd_cpu_us_per_point"):
            values = [r[key] for r in runs]
            print(f"InfluxDB 1.x {key}: median {statistics.median(values):,.1f} "
                  f"(runs: {', '.join(f'{v:,.1f}' for v in values)})")
        print(f"InfluxDB points dropped: {sum(r['dropped'] for r in runs)}  load {load()}")


if __name__ == "__main__":
    main()
