"""MQTT ingest: CPU per message and messages/s on one core, 1,000 plugs reporting through Mosquitto.

    .venv/bin/python bench/bench_mqtt_ingest.py [--plugs 1000] [--families tasmota shelly z2m]
        [--levels client service] [--rates 5000 20000 0] [--seconds 5] [--repeats 3]

A private mosquitto and a publisher process (bench/mqttlib.py: raw MQTT packets, each plug's
periodic message in turn: Tasmota `tele/<t>/SENSOR`, Shelly Gen2 `NotifyStatus`, zigbee2mqtt
state) run pinned to the last CPU; this process, pinned to CPU 0, is the consumer:

- level `client`: plugwatch's one MQTT client and the N family plugs (parsing, checking, the
  Reading handed to a sink that counts): what MQTT ingest itself costs;
- level `service`: the real Service on those plugs (detectors, failure log, the writer thread
  storing every reading in SQLite in a temporary folder): what a message costs end to end.

For each offered rate (messages/s over all plugs; 0 = as fast as the publisher can write), the
window runs from the publisher's start to the last message handled (and, for `service`, stored).
Printed: messages/s handled, this process's CPU (user + system, all threads) per message and as a
share of one core, messages lost (sent - received), the broker's and the publisher's CPU apart;
medians of --repeats runs, with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import client_cpu, header, load, median, pin
from mqttlib import Broker, Publisher

DRIVERS = {"tasmota": "tasmota-mqtt", "shelly": "shelly-mqtt", "z2m": "zigbee2mqtt"}


def config_for(family: str, devices: list[str], port: int, database: str) -> Any:
    """A Config of one MQTT plug per device, on the private broker, publishing nothing."""
    from plugwatch.config import config_from_dict

    def entry(i: int, device: str) -> dict[str, Any]:
        plug: dict[str, Any] = {"name": f"plug-{i}", "driver": DRIVERS[family]}
        if family == "tasmota":
            plug.update(topic=device, poll=False)
        elif family == "shelly":
            plug["prefix"] = device
        else:
            plug["device"] = device
        return plug

    return config_from_dict({
        "database": database,
        "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "publish": False},
        "plugs": [entry(i, d) for i, d in enumerate(devices)]})


class Consumer:
    """What is measured: `received()` messages handled so far, `idle()` once all is done."""

    client: Any

    def received(self) -> int:
        return int(self.client.stats.received)

    def idle(self) -> bool:
        return True


@contextlib.asynccontextmanager
async def client_level(config: Any) -> AsyncIterator[Consumer]:
    """The MQTT client and the family plugs, readings to a counting sink."""
    from plugwatch.mqtt.client import client_for
    from plugwatch.sources import make_pushed

    consumer = Consumer()
    consumer.client = client = client_for(config.mqtt)
    plugs = [make_pushed(p, client) for p in config.plugs]
    readings = [0]

    def sink(name: str, sample: Any, record: bool) -> None:
        readings[0] += 1

    for plug in plugs:
        plug.start(sink)
    client.start()
    try:
        yield consumer
    finally:
        for plug in plugs:
            await plug.close()
        await client.close()


@contextlib.asynccontextmanager
async def service_level(config: Any) -> AsyncIterator[Consumer]:
    """The real Service on the plugs, storing into SQLite."""
    from plugwatch.testing import running_service

    async with running_service(config) as service:
        consumer = Consumer()
        consumer.client = service.mqtt
        consumer.idle = lambda: service.writer.queued == 0  # type: ignore[method-assign]
        yield consumer


LEVELS = {"client": client_level, "service": service_level}


async def one_window(consumer: Consumer, publisher: Publisher, broker: Broker, rate: float,
                     seconds: float) -> dict[str, float]:
    """Publish at `rate` for `seconds`; the figures of the window."""
    got0, cpu0, t0 = consumer.received(), time.process_time(), time.monotonic()
    broker0, pub0 = broker.cpu_seconds(), publisher.cpu_seconds()
    publisher.go(rate, seconds)
    result = await asyncio.to_thread(publisher.result)
    sent = int(result["sent"])
    last_growth, last_count = time.monotonic(), consumer.received()
    end_cpu, end_t = time.process_time(), time.monotonic()
    while True:  # until everything sent was handled (or nothing more comes for a second)
        count = consumer.received()
        if count != last_count:
            last_count, last_growth = count, time.monotonic()
            end_cpu, end_t = time.process_time(), last_growth
        if (count - got0 >= sent and consumer.idle()) or time.monotonic() - last_growth > 1.0:
            if consumer.idle():
                end_cpu, end_t = max(end_cpu, time.process_time()), max(end_t, time.monotonic())
            break
        await asyncio.sleep(0.01)
    got = last_count - got0
    wall = end_t - t0
    return {"sent": sent, "got": got, "rate": got / wall, "us": (end_cpu - cpu0) / got * 1e6,
            "core": (end_cpu - cpu0) / wall,
            "broker_us": (broker.cpu_seconds() - broker0) / max(sent, 1) * 1e6,
            "pub_us": (publisher.cpu_seconds() - pub0) / max(sent, 1) * 1e6}


async def measure(level: str, family: str, plugs: int, rates: list[float], seconds: float,
                  repeats: int) -> None:
    devices = [f"bench-{family}-{i}" for i in range(plugs)]
    broker = Broker()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mqtt-db-") as tmp:
            config = config_for(family, devices, broker.port, f"sqlite:///{tmp}/pw.db")
            async with LEVELS[level](config) as consumer:
                if not await consumer.client.wait_connected(10):
                    raise SystemExit(f"no broker: {consumer.client.last_error}")
                await asyncio.sleep(1.0)  # every subscription acknowledged
                publisher = Publisher(broker.port, family, devices)
                try:
                    deadline = time.monotonic() + 20
                    while consumer.received() < plugs and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)  # the warm-up round: a first report each
                    await asyncio.sleep(0.5)
                    for rate in rates:
                        runs = [await one_window(consumer, publisher, broker, rate, seconds)
                                for _ in range(repeats)]
                        report(level, family, rate, runs)
                finally:
                    publisher.stop()
    finally:
        broker.stop()


def report(level: str, family: str, rate: float, runs: list[dict[str, float]]) -> None:
    def med(key: str) -> float:
        return median([r[key] for r in runs])

    offered = f"{rate:>7,.0f}/s" if rate else "flat out"
    lost = sum(r["sent"] - r["got"] for r in runs)
    each = ", ".join(f"{r['us']:.1f}" for r in runs)
    print(f"  {level:<8} {family:<8} offered {offered}: handled {med('rate'):8,.0f} msg/s, "
          f"{med('us'):5.1f} us CPU per message (runs "
          f"{each}), {med('core') * 100:4.0f} % of a core, "
          f"lost {lost}; broker {med('broker_us'):4.1f} us, publisher {med('pub_us'):4.1f} us "
          f"per message; load {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=1000)
    parser.add_argument("--families", nargs="+", default=list(DRIVERS), choices=list(DRIVERS))
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--rates", nargs="+", type=float, default=[5000, 20000, 0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pin(client_cpu())
    print(header(f"bench_mqtt_ingest: {args.plugs} plugs, {args.seconds:g} s windows, "
                 f"medians of {args.repeats}"))
    for level in args.levels:
        for family in args.families:
            asyncio.run(measure(level, family, args.plugs, args.rates, args.seconds,
                                args.repeats))


if __name__ == "__main__":
    main()
