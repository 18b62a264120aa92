"""What publishing plug states to MQTT costs: 10,000 plugs at the default publish_interval.

    .venv/bin/python bench/bench_mqtt_publish.py [--plugs 10000] [--seconds 30] [--repeats 3]
        [--interval 10]

This process (pinned to CPU 0) runs the MQTT output (plugwatch.outputs.mqtt.MqttOutput) on the
real MQTT client, connected to a private mosquitto; a subscriber process counts what arrives on
plugwatch's topics (the broker and the subscriber are pinned to the last CPU, their CPU apart).
A stand-in sampler hands the output one reading per plug per second (10,000 readings/s, the
power different every time, so every plug's state message changes every interval: the worst
case), and each second a few plugs change state (published at once) and finish a run (an
event). The output publishes each plug's power at most once per `--interval` seconds (the
default publish_interval is 10 s).

The figure is the output's CPU as a share of one core: this process's CPU (user + system) over
`--seconds` with the output, minus the same stand-in sampler feeding a listener that does nothing
(runs alternate, medians of --repeats). Also printed: messages published and received, and the
longest the event loop was held up (sampling would wait that long).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import client_cpu, cpu_seconds, emulator_cpu, header, load, median, pin
from mqttlib import Broker

# counts the messages under a topic filter; prints the count on stdin's "count"
SUBSCRIBER = """
import asyncio, sys
from plugwatch.mqtt.client import MqttClient
from plugwatch.mqtt.settings import MqttSettings
async def main(port, topic):
    client = MqttClient(MqttSettings(port=port), client_id="bench-subscriber")
    got = [0]
    client.subscribe(topic, lambda t, p, r: got.__setitem__(0, got[0] + 1))
    client.start()
    await client.wait_connected(10)
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "count":
        print(got[0], flush=True)
    await client.close()
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""
CHANGES_PER_S = 5  # plugs changing state each second (each also ends a run)


class Subscriber:
    def __init__(self, port: int, topic: str) -> None:
        cpus = emulator_cpu()
        pin_cmd = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
        self.proc = subprocess.Popen([*pin_cmd, sys.executable, "-c", SUBSCRIBER, str(port),
                                      topic], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the subscriber did not start (see its error above)")

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


async def feed(listener: Any, on_event: Any, detectors: dict[str, Any], seconds: float,
               ) -> float:
    """One reading per plug per second for `seconds`, in 100 slices a second, and a few state
    changes and runs each second; returns the longest lateness of a slice (s)."""
    from plugwatch.model import Reading, RunSummary, State, Transition

    names = list(detectors)
    n = len(names)
    slices = 100
    start = time.monotonic()
    worst, k = 0.0, 0
    while True:
        planned = start + k / slices
        now = time.monotonic()
        if now - start >= seconds:
            return worst
        if planned > now:
            await asyncio.sleep(planned - now)
            continue
        worst = max(worst, now - planned)
        ts = time.time()
        second, part = divmod(k, slices)
        for i in range(part * n // slices, (part + 1) * n // slices):
            listener(names[i], Reading(ts, 100.0 + (i + k) % 17 + 0.01 * second, True,
                                       1.0 + 0.0001 * k, 230.0, 0.45))
        if part == 0:
            for j in range(CHANGES_PER_S):
                plug = names[(second * CHANGES_PER_S + j) % n]
                d = detectors[plug]
                old, d.state = d.state, State.STANDBY if d.state is State.ON else State.ON
                d.since = ts
                on_event(Transition(plug, ts, old, d.state, "power", 100.0))
                if d.state is State.STANDBY:
                    on_event(RunSummary(plug, ts - 60, ts, 100.0, 2000.0))
        k += 1


async def one_run(plugs: int, seconds: float, interval: float, port: int, with_output: bool,
                  subscriber: Subscriber) -> dict[str, float]:
    from plugwatch.config import config_from_dict
    from plugwatch.model import State
    from plugwatch.mqtt.client import client_for
    from plugwatch.outputs.mqtt import MqttOutput

    config = config_from_dict({
        "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "publish_interval": interval},
        "plugs": [{"name": f"plug-{i}", "driver": "kasa", "host": f"10.1.{i // 250}.{i % 250}"}
                  for i in range(plugs)]})
    assert config.mqtt is not None
    client = client_for(config.mqtt)
    client.start()
    if not await client.wait_connected(10):
        raise SystemExit(f"no broker: {client.last_error}")
    detectors = {p.name: SimpleNamespace(state=State.ON, since=time.time() - 60)
                 for p in config.plugs}
    service = SimpleNamespace(mqtt=client, detectors=detectors)
    output = MqttOutput(config.mqtt, config.plugs)
    if with_output:
        await output.start(service)
        listener, on_event = output.on_sample, output.on_event
    else:
        def listener(plug: str, sample: Any) -> None:
            return None

        def on_event(event: Any) -> None:
            return None
    await asyncio.sleep(3.0)  # the first state and discovery of every plug go out
    gc.collect()  # as the service does once started: long-lived objects out of the GC's scans
    gc.freeze()
    received0 = subscriber.count()
    published0, cpu0 = client.stats.published, time.process_time()
    worst = await feed(listener, on_event, detectors, seconds)
    cpu = time.process_time() - cpu0
    published = client.stats.published - published0
    await output.stop()
    await client.close()
    gc.unfreeze()
    await asyncio.sleep(0.5)
    return {"core": cpu / seconds, "published": published,
            "received": subscriber.count() - received0, "worst_ms": worst * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interval", type=float, default=10.0, help="publish_interval (s)")
    args = parser.parse_args()
    pin(client_cpu())
    print(header(f"bench_mqtt_publish: {args.plugs} plugs read at 1 Hz, publish_interval "
                 f"{args.interval:g} s, {args.seconds:g} s windows, medians of {args.repeats}"))
    broker = Broker()
    subscriber = Subscriber(broker.port, "plugwatch/#")
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:
        broker0, sub0 = broker.cpu_seconds(), cpu_seconds(subscriber.proc.pid)
        for _ in range(args.repeats):
            for with_output in (False, True):
                runs[with_output].append(asyncio.run(one_run(
                    args.plugs, args.seconds, args.interval, broker.port, with_output,
                    subscriber)))
        broker_s = broker.cpu_seconds() - broker0
        sub_s = cpu_seconds(subscriber.proc.pid) - sub0
    finally:
        subscriber.stop()
        broker.stop()
    base = median([r["core"] for r in runs[False]])
    out = [r["core"] - base for r in runs[True]]
    published = sum(r["published"] for r in runs[True])
    received = sum(r["received"] for r in runs[True])
    print(f"  stand-in sampler alone: {base * 100:.2f} % of a core (runs "
          f"{percent([r['core'] for r in runs[False]])})")
    print(f"  MQTT output: {median(out) * 100:.2f} % of a core (runs {percent(out)}); "
          f"{published / (args.repeats * args.seconds):,.0f} messages/s published, "
          f"{received:,} of {published:,} received; the loop held up at most "
          f"{max(r['worst_ms'] for r in runs[True]):.0f} ms (without the output "
          f"{max(r['worst_ms'] for r in runs[False]):.0f} ms)")
    print(f"  apart: broker {broker_s / max(published, 1) * 1e6:.1f} us, subscriber "
          f"{sub_s / max(received, 1) * 1e6:.1f} us per message; load {load()}")


def percent(values: list[float]) -> str:
    return ", ".join(f"{v * 100:.2f}" for v in values)


if __name__ == "__main__":
    main()
