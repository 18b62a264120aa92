"""The MQTT output seen by a Home Assistant-shaped consumer: a test client subscribed to the
discovery prefix and to plugwatch's topics, through the real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.emulator.mqtt import MqttDevice
from plugwatch.model import DetectorSettings
from plugwatch.mqtt.settings import MqttSettings
from plugwatch.outputs.homeassistant import discovery_payload, discovery_topic, state_topic
from plugwatch.service.app import run_service
from plugwatch.store import open_store
from tests.helpers import wait_for
from tests.mqtt_helpers import (
    PrivateBroker,
    Recorder,
    broker,
    clear_retained,
    mqtt_config,
    private_broker,
    publish,
    recording,
    unique,
)

__all__ = ["broker", "private_broker"]  # fixtures, imported for the tests below

FAST = DetectorSettings(
    window_s=0.0, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
    dwell_on_s=0.2, dwell_standby_s=0.4, dwell_off_s=0.4, unreachable_after=1, gap_s=30.0,
)


@contextlib.asynccontextmanager
async def service_running(config: Any) -> AsyncIterator[None]:
    """`plugwatch run`'s composition (sources, rules, outputs, the MQTT client) in this loop."""
    store = await asyncio.to_thread(open_store, config.database)
    stop = asyncio.Event()
    task = asyncio.create_task(run_service(config, store, stop=stop))
    try:
        yield
    finally:
        stop.set()
        await task
        store.close()


def last_json(rec: Recorder, topic: str) -> dict[str, Any]:
    payloads = [p for p in rec.on(topic) if p]
    assert payloads, f"nothing on {topic}"
    data: dict[str, Any] = json.loads(payloads[-1])
    return data


async def test_a_home_assistant_consumer_sees_discovery_states_power_and_runs(
        broker: MqttSettings, tmp_path: Path) -> None:
    """Two plugs (a Kasa over TCP, a Tasmota over MQTT): their devices are discovered with the
    four entities and plugwatch's availability, the states arrive retained, power no more often
    than the publish interval, and a run gives run_started and run_finished."""
    kasa, tas = unique("kasa"), unique("tasmota")
    load = {"w": 0.0}
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias=kasa, speed=60.0,
                                                power=lambda t: load["w"])])
    device = MqttDevice("tasmota", unique("tas"), power=2.0, report_s=0.05)
    await device.start(broker)
    config = mqtt_config(broker, f"sqlite:///{tmp_path}/pw.db", [
        {"name": kasa, "driver": "kasa", "host": f"127.0.0.1:{port}", "interval": 0.05},
        {"name": tas, "driver": "tasmota-mqtt", "topic": device.name, "interval": 0.05},
    ], detector=FAST)
    ha, pw = broker.homeassistant_prefix, broker.prefix
    try:
        async with recording(broker, f"{ha}/#", f"{pw}/#") as rec, service_running(config):
            await wait_for(lambda: bool(rec.on(state_topic(broker, kasa))), 10.0)
            load["w"] = 500.0
            await wait_for(lambda: len(rec.on(f"{pw}/{kasa}/event")) >= 1, 10.0)
            await asyncio.sleep(1.0)  # power updates flow meanwhile
            load["w"] = 3.0
            await wait_for(lambda: len(rec.on(f"{pw}/{kasa}/event")) >= 2, 10.0)
            tas_topic = state_topic(broker, tas)
            await wait_for(lambda: last_json(rec, tas_topic)["state"] == "standby", 10.0)
    finally:
        await emulator.stop()
        await device.stop()
        await clear_retained(broker, f"tele/{device.name}/#")
    for plug in (kasa, tas):
        disc = last_json(rec, discovery_topic(broker, plug))
        assert disc["availability_topic"] == f"{pw}/status"
        assert disc["state_topic"] == f"{pw}/{plug}/state"
        cmps = disc["cmps"]
        assert cmps["state"]["options"] == ["on", "standby", "off", "unreachable"]
        assert (cmps["power"]["unit_of_measurement"], cmps["power"]["state_class"]) == (
            "W", "measurement")
        assert (cmps["energy"]["unit_of_measurement"], cmps["energy"]["state_class"]) == (
            "kWh", "total_increasing")
        assert (cmps["run"]["p"], cmps["run"]["state_topic"]) == ("event", f"{pw}/{plug}/event")
    started, finished = (json.loads(p) for p in rec.on(f"{pw}/{kasa}/event"))
    assert started["event_type"] == "run_started"
    assert finished["event_type"] == "run_finished"
    assert finished["duration_s"] > 0.8 and finished["peak_w"] == pytest.approx(500.0)
    assert finished["energy_kwh"] == pytest.approx(500.0 * 60 * finished["duration_s"] / 3.6e6,
                                                   rel=0.3)  # the meter counts whole Wh
    states = [json.loads(p) for p in rec.on(state_topic(broker, kasa)) if p]
    assert [s["state"] for s in states if s["state"] == "on"], states
    assert set(states[-1]) == {"state", "since", "power_w", "energy_kwh", "reason"}
    assert states[-1]["state"] == "standby" and states[-1]["power_w"] == pytest.approx(3.0)
    # readings every 0.05 s, but power goes out at most once per 0.2 s (plus each transition)
    on_msgs = [s for s in states if s["state"] == "on"]
    assert 1 < len(on_msgs) <= 1.0 / broker.publish_interval_s + 4, len(on_msgs)
    assert rec.on(f"{pw}/status")[-1] == b"offline"  # the clean stop said goodbye


async def test_a_removed_plug_loses_its_device_and_home_assistant_online_brings_discovery(
        broker: MqttSettings, tmp_path: Path) -> None:
    """A device this plugwatch announced for a plug that left the config is cleared; when Home
    Assistant restarts (homeassistant/status online), discovery is sent again."""
    gone, kept = unique("gone"), unique("kept")
    await publish(broker, discovery_topic(broker, gone), discovery_payload(broker, gone), True)
    await publish(broker, state_topic(broker, gone), b'{"state":"off"}', True)
    config = mqtt_config(broker, f"sqlite:///{tmp_path}/pw.db", [
        {"name": kept, "driver": "tasmota-mqtt", "topic": unique("t")}], detector=FAST)
    ha, pw = broker.homeassistant_prefix, broker.prefix
    async with recording(broker, f"{ha}/#", f"{pw}/#") as rec, service_running(config):
        await wait_for(lambda: rec.on(discovery_topic(broker, gone))[-1:] == [b""], 10.0)
        await wait_for(lambda: rec.on(state_topic(broker, gone))[-1:] == [b""], 10.0)
        before = len(rec.on(discovery_topic(broker, kept)))
        assert before >= 1
        await publish(broker, f"{ha}/status", b"online")
        await wait_for(lambda: len(rec.on(discovery_topic(broker, kept))) > before, 10.0)


async def test_a_broker_outage_loses_no_state_and_no_run_event(
        private_broker: PrivateBroker, tmp_path: Path) -> None:
    """The broker dies while a plug changes state: sampling goes on, and once plugwatch is
    connected again a consumer gets the latest state and the run event that happened meanwhile."""
    settings = MqttSettings(host="127.0.0.1", port=private_broker.port, prefix=unique("pw"),
                            homeassistant_prefix=unique("ha"), publish_interval_s=0.2)
    name = unique("kasa")
    load = {"w": 2.0}
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias=name,
                                                power=lambda t: load["w"])])
    config = mqtt_config(settings, f"sqlite:///{tmp_path}/pw.db", [
        {"name": name, "driver": "kasa", "host": f"127.0.0.1:{port}", "interval": 0.05}],
        detector=FAST)
    topic = state_topic(settings, name)
    try:
        async with service_running(config):
            async with recording(settings, f"{settings.prefix}/#") as rec:
                await wait_for(lambda: bool(rec.on(topic)), 10.0)
                assert json.loads(rec.on(topic)[-1])["state"] == "standby"
            private_broker.kill()
            load["w"] = 800.0  # on, while nobody can hear it
            await asyncio.sleep(1.5)
            private_broker.start()  # plugwatch retries 1.6-2.4 s after its first refusal
            async with recording(settings, f"{settings.prefix}/#") as rec:
                await wait_for(lambda: bool(rec.on(f"{settings.prefix}/{name}/event")), 10.0)
                await wait_for(lambda: bool(rec.on(topic)), 10.0)
                assert json.loads(rec.on(topic)[-1])["state"] == "on"
                [event] = [json.loads(p) for p in rec.on(f"{settings.prefix}/{name}/event")]
                assert event["event_type"] == "run_started"
    finally:
        await emulator.stop()


def _run_plugwatch(config_file: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plugwatch", "run", "--config",
                             str(config_file)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def test_availability_is_offline_when_the_service_is_killed_and_online_again(
        broker: MqttSettings, tmp_path: Path) -> None:
    """`plugwatch run` killed with SIGKILL: the broker publishes its will (offline) on
    plugwatch/status; started again it is online."""
    config_file = tmp_path / "plugwatch.yaml"
    config_file.write_text(
        f"database: sqlite:///{tmp_path}/pw.db\n"
        f"mqtt: {{url: 'mqtt://{broker.where}', prefix: {broker.prefix}, "
        f"homeassistant: {{prefix: {broker.homeassistant_prefix}}}}}\n"
        f"plugs:\n  - {{name: tv, driver: zigbee2mqtt, device: {unique('tv')}}}\n")
    status = f"{broker.prefix}/status"
    async with recording(broker, status) as rec:
        proc = _run_plugwatch(config_file)
        try:
            await wait_for(lambda: rec.on(status)[-1:] == [b"online"], 60.0)  # start-up
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            await wait_for(lambda: rec.on(status)[-1:] == [b"offline"], 10.0)
            proc = _run_plugwatch(config_file)
            await wait_for(lambda: rec.on(status)[-1:] == [b"online"], 60.0)  # start-up
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
            await wait_for(lambda: rec.on(status)[-1:] == [b"offline"], 10.0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
