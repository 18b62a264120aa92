"""`plugwatch emulate --family ...` for MQTT devices and `plugwatch discover --mqtt URL`, as
commands, through the real Mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest

from plugwatch.mqtt.settings import MqttSettings
from tests.mqtt_helpers import broker, clear_retained, publish

__all__ = ["broker"]


def plugwatch(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugwatch", *args], capture_output=True,
                          text=True, timeout=timeout)


def discover(settings: MqttSettings) -> list[dict[str, object]]:
    done = plugwatch("discover", "--mqtt", f"mqtt://{settings.where}", "--timeout", "0.5",
                     "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize(("family", "driver", "key"), [
    ("tasmota-mqtt", "tasmota-mqtt", "topic"), ("shelly-mqtt", "shelly-mqtt", "prefix")])
async def test_emulated_devices_are_discovered_online_then_offline_when_stopped(
        broker: MqttSettings, family: str, driver: str, key: str) -> None:
    name = f"emu{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-m", "plugwatch", "emulate", "--family", family,
                             "--broker", f"mqtt://{broker.where}", "--name", name, "--count",
                             "2", "--power", "40", "--report", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith(f"publishing 2 emulated {family} device(s)"), banner
        found = [d for d in discover(broker) if str(d["id"]).startswith(name)]
        assert sorted(d["id"] for d in found) == [f"{name}-1", f"{name}-2"]
        assert all(d["online"] is True and d["driver"] == driver for d in found)
        assert found[0]["entry"] == {"name": found[0]["id"], "driver": driver,
                                     key: found[0]["id"]}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        found = [d for d in discover(broker) if str(d["id"]).startswith(name)]
        assert [d["online"] for d in found] == [False, False]
    finally:
        if proc.poll() is None:
            proc.kill()
        await clear_retained(broker, f"tele/{name}-1/#", f"tele/{name}-2/#", f"{name}-1/#",
                             f"{name}-2/#")


async def test_zigbee2mqtt_plugs_are_found_in_the_bridge_device_list(
        broker: MqttSettings) -> None:
    """Devices exposing power are plugs; a sensor without power is not."""
    base = f"z2m{uuid.uuid4().hex[:8]}"
    devices = [
        {"friendly_name": "living room/tv", "definition": {
            "vendor": "IKEA", "model": "E1603", "exposes": [
                {"type": "switch", "features": [{"property": "state"}]},
                {"type": "numeric", "property": "power", "unit": "W"}]}},
        {"friendly_name": "hall sensor", "definition": {
            "vendor": "Aqara", "model": "WSDCGQ11LM", "exposes": [
                {"type": "numeric", "property": "temperature"}]}},
    ]
    await publish(broker, f"{base}/bridge/devices", json.dumps(devices), retain=True)
    try:
        found = [d for d in discover(broker) if d["driver"] == "zigbee2mqtt"
                 and d["entry"].get("base_topic") == base]  # type: ignore[union-attr]
        assert [(d["id"], d["model"]) for d in found] == [("living room/tv", "IKEA E1603")]
        assert found[0]["entry"] == {"name": "living_room_tv", "driver": "zigbee2mqtt",
                                     "device": "living room/tv", "base_topic": base}
    finally:
        await clear_retained(broker, f"{base}/#")


def test_a_bad_or_dead_broker_is_one_error_line() -> None:
    done = plugwatch("discover", "--mqtt", "http://x")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("plugwatch: error: --mqtt/--broker: not an MQTT broker URL (use e.g. "
                           "mqtt://127.0.0.1:1883 or mqtts://broker:8883)\n")
    started = time.monotonic()
    done = plugwatch("discover", "--mqtt", "mqtt://127.0.0.1:1", "--timeout", "0.5")
    assert done.returncode == 1 and time.monotonic() - started < 20
    assert done.stderr == ("plugwatch: error: cannot reach the MQTT broker at 127.0.0.1:1: "
                           "connection refused (is the broker running?)\n")
