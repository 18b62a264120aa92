"""The MQTT halves of `plugwatch discover --mqtt URL` and `plugwatch emulate --family ...-mqtt`
(cli/device.py registers the flags and calls these)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from plugwatch.errors import ConfigError, PlugwatchError

MQTT_FAMILIES = {"tasmota-mqtt": "tasmota", "shelly-mqtt": "shelly", "z2m": "z2m"}


def broker_settings(url: str) -> Any:
    """MqttSettings for a --mqtt/--broker URL (ConfigError naming the flag when it is bad)."""
    from plugwatch.mqtt.settings import MqttSettings

    try:
        return MqttSettings.from_url(url)
    except ConfigError as exc:
        raise ConfigError(f"--mqtt/--broker: {exc}") from None


def discover_mqtt_command(args: argparse.Namespace) -> int:
    """List the MQTT plugs in the broker's retained topics."""
    import asyncio
    import logging

    from plugwatch.sources.mqtt.discovery import discover_mqtt

    settings = broker_settings(args.mqtt)
    logging.getLogger("plugwatch.mqtt.client").setLevel(logging.ERROR)  # one line, not retries
    try:
        found = asyncio.run(discover_mqtt(settings, wait_s=args.timeout))
    except ConnectionError as exc:
        raise PlugwatchError(f"cannot reach the MQTT broker at {settings.where}: {exc}") from None
    for plug in found:
        print(json.dumps(plug.to_json()) if args.json else plug.describe())
    if not found and not args.json:
        print(f"no MQTT plug in the retained topics of {settings.where}", file=sys.stderr)
    return 0


def emulate_mqtt_command(args: argparse.Namespace, power: Any) -> int:
    """Publish like `--count` devices of an MQTT family until SIGINT/SIGTERM."""
    if args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    if args.report <= 0:
        raise ConfigError(f"--report must be more than 0 s, got {args.report:g}")
    import asyncio

    asyncio.run(_emulate(args, power))
    return 0


async def _emulate(args: argparse.Namespace, power: Any) -> None:
    import asyncio
    import signal

    from plugwatch.emulator.mqtt import MqttDevice

    settings = broker_settings(args.broker)
    family = MQTT_FAMILIES[args.family]
    devices = [MqttDevice(family, f"{args.name}-{i + 1}", power=power, speed=args.speed,
                          report_s=args.report) for i in range(args.count)]
    try:
        for device in devices:
            await device.start(settings)
    except ConnectionError as exc:
        for device in devices:
            await device.stop()
        raise PlugwatchError(str(exc)) from None
    key = {"tasmota": "topic", "shelly": "prefix", "z2m": "device"}[family]
    driver = {"tasmota": "tasmota-mqtt", "shelly": "shelly-mqtt", "z2m": "zigbee2mqtt"}[family]
    print(f"publishing {len(devices)} emulated {args.family} device(s) through "
          f"{settings.where}; Ctrl-C stops. plugs:", flush=True)
    for device in devices:
        print(f"  - {{name: {device.name}, driver: {driver}, {key}: {device.name}}}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for device in devices:
            await device.stop()
