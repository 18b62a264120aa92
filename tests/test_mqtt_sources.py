"""Plugs that report over MQTT (Tasmota, Shelly Gen2, zigbee2mqtt), emulated through the real
Mosquitto, watched by the real service recording into SQLite."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from plugwatch.emulator.mqtt import MqttDevice
from plugwatch.model import DetectorSettings, Event, ReadFailure, RunSummary, State, Transition
from plugwatch.mqtt.settings import MqttSettings
from plugwatch.store import open_store
from plugwatch.testing import running_service
from tests.helpers import Clock, wait_for
from tests.mqtt_helpers import (
    PrivateBroker,
    broker,
    clear_retained,
    mqtt_config,
    private_broker,
    publish,
    unique,
)
from tests.washer import washer_cycle

__all__ = ["broker", "private_broker"]  # fixtures, imported for the tests below

SPEED = 20.0
FAST = DetectorSettings(
    window_s=0.2, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
    dwell_on_s=0.3, dwell_standby_s=1.0, dwell_off_s=0.5, unreachable_after=1, gap_s=30.0,
)
DRIVERS = {"tasmota": "tasmota-mqtt", "shelly": "shelly-mqtt", "z2m": "zigbee2mqtt"}
FAMILIES = list(DRIVERS)


def plug_entry(family: str, name: str, device: str, base: str, **extra: Any) -> dict[str, Any]:
    """The plugs: entry watching emulated `device` of `family`."""
    entry: dict[str, Any] = {"name": name, "driver": DRIVERS[family], **extra}
    if family == "tasmota":
        entry["topic"] = device
    elif family == "shelly":
        entry["prefix"] = device
    else:
        entry.update(device=device, base_topic=base)
    return entry


def data_topic(family: str, device: str, base: str) -> str:
    """Where the family publishes its power."""
    if family == "tasmota":
        return f"tele/{device}/SENSOR"
    if family == "shelly":
        return f"{device}/status/switch:0"
    return f"{base}/{device}"


def washer_profile(real_s: float) -> float:
    """Off, standby, on (with a soak pause shorter than the standby dwell), standby (W)."""
    if real_s < 1.2:
        return 0.0
    if real_s < 3.0:
        return 2.0
    if 4.5 <= real_s < 4.75:
        return 2.0
    if real_s < 5.3:
        return 1000.0
    return 2.0


def announced(events: list[Event]) -> list[Transition]:
    return [e for e in events if isinstance(e, Transition) and e.from_state != State.UNKNOWN]


class Rig:
    """One emulated device, its plug config and the retained topics to clear afterwards."""

    def __init__(self, family: str, settings: MqttSettings, tmp_path: Path, **device: Any):
        self.family, self.settings = family, settings
        self.name = unique("plug")
        self.device_name = unique(family)
        self.base = unique("z2m")
        self.device = MqttDevice(family, self.device_name, base_topic=self.base, **device)
        self.database = f"sqlite:///{tmp_path}/plugwatch.db"

    def config(self, **extra: Any) -> Any:
        interval = extra.pop("interval", 0.1)
        detector = extra.pop("detector", FAST)
        return mqtt_config(self.settings, self.database, [plug_entry(
            self.family, self.name, self.device_name, self.base, interval=interval, **extra)],
            detector=detector)

    @property
    def topic(self) -> str:
        return data_topic(self.family, self.device_name, self.base)

    async def cleanup(self) -> None:
        await self.device.stop()
        await clear_retained(self.settings, f"tele/{self.device_name}/#",
                             f"{self.device_name}/#", f"{self.base}/#",
                             f"{self.settings.prefix}/#")


@pytest.fixture(params=FAMILIES)
async def rig(request: pytest.FixtureRequest, broker: MqttSettings,
              tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(request.param, broker, tmp_path, power=60.0, report_s=0.1)
    yield r
    await r.cleanup()


@pytest.mark.parametrize("family", FAMILIES)
async def test_washer_cycle_gives_one_run_with_the_device_energy(
        family: str, broker: MqttSettings, tmp_path: Path) -> None:
    """off -> standby -> on -> standby from change reports; one run whose energy is what the
    device's own counter counted while on (the soak pause does not end the run)."""
    rig = Rig(family, broker, tmp_path)
    events: list[Event] = []
    try:
        # stale_after: the plug waits for its device (a polled Tasmota's default is 3 intervals)
        async with running_service(rig.config(stale_after=10.0),
                                   listeners=[events.append]) as service:
            # the washer's story starts once the service listens, however long it took to start
            assert await service.mqtt.wait_connected(10)
            await asyncio.sleep(0.3)
            rig.device = MqttDevice(family, rig.device_name, base_topic=rig.base, speed=SPEED,
                                    report_s=0.1, power=lambda t: washer_profile(t / SPEED))
            await rig.device.start(broker)
            await wait_for(lambda: any(isinstance(e, RunSummary) for e in events), 20.0)
    finally:
        await rig.cleanup()
    assert [(t.from_state, t.to_state) for t in announced(events)] == [
        (State.OFF, State.STANDBY), (State.STANDBY, State.ON), (State.ON, State.STANDBY)]
    [run] = [e for e in events if isinstance(e, RunSummary)]
    on_wh = 1000.0 * (5.3 - 3.0 - 0.25) * SPEED / 3600
    one_report_wh = 1000.0 * 0.1 * SPEED / 3600
    assert abs(run.energy_wh - on_wh) <= 3 * one_report_wh, (run, on_wh)
    store = open_store(rig.database)
    try:
        [stored] = store.runs(plug=rig.name)
        assert stored.energy_wh == pytest.approx(run.energy_wh)
    finally:
        store.close()


RECORDING = DetectorSettings(  # emulated seconds: the recording is reported once a minute
    window_s=60.0, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
    dwell_on_s=120.0, dwell_standby_s=1500.0, dwell_off_s=200.0, unreachable_after=5,
    gap_s=300.0)
REPORT_S = 60.0


async def test_the_washer_recording_gives_one_run_with_its_energy_on_every_mqtt_family(
        broker: MqttSettings, tmp_path: Path) -> None:
    """The real washer recording reported once a minute by a Tasmota, a Shelly Gen2 and a
    zigbee2mqtt device through the real broker: each plug sees off -> standby -> on -> standby
    and one run whose energy, from the device's own counter, is the recording's within 1 %.

    The devices and the plugs share a clock the test moves one report period at a time, after
    every plug received the previous report: however slowly a loaded machine delivers, the
    story and its figures stay the same. The clock runs ahead of the wall clock, so the
    service's ticks (on the wall clock) neither hand readings on nor find a plug stale."""
    power_at, start, end, cycle_wh = washer_cycle()
    clock = Clock(time.time() + 1e6)
    rigs = [Rig(family, broker, tmp_path) for family in FAMILIES]
    plugs = [plug_entry(r.family, r.name, r.device_name, r.base, interval=1.0,
                        **({"poll": False} if r.family == "tasmota" else {})) for r in rigs]
    config = mqtt_config(broker, rigs[0].database, plugs, detector=RECORDING)
    events: list[Event] = []
    try:
        async with running_service(config, listeners=[events.append]) as service:
            sources = {s.name: s for s in service.pushed.sources}
            for source in sources.values():
                source.clock = clock
            assert await service.mqtt.wait_connected(10)
            await asyncio.sleep(0.3)  # subscribed
            t0 = clock.now
            for r in rigs:  # reports only when told (report_s: never on their own)
                r.device = MqttDevice(r.family, r.device_name, base_topic=r.base, clock=clock,
                                      report_s=1e6, power=power_at)
                await r.device.start(broker)
            while clock.now - t0 < end + 3000:
                clock.now += REPORT_S
                for r in rigs:
                    r.device.publish_report()
                await wait_for(lambda: all(s._last_report == clock.now
                                           for s in sources.values()), 10.0, every=0.002)
            await wait_for(lambda: sum(isinstance(e, RunSummary) for e in events) == 3, 5.0)
    finally:
        for r in rigs:
            await r.cleanup()
    for r in rigs:
        steps = [(e.from_state, e.to_state) for e in events if isinstance(e, Transition)
                 and e.plug == r.name and e.from_state != State.UNKNOWN]
        assert steps == [(State.OFF, State.STANDBY), (State.STANDBY, State.ON),
                         (State.ON, State.STANDBY)], r.family
        [run] = [e for e in events if isinstance(e, RunSummary) and e.plug == r.name]
        assert abs(run.energy_wh - cycle_wh) <= 0.01 * cycle_wh, (r.family, run, cycle_wh)
        first, last = run.start - t0, run.end - t0
        assert start - 2 * REPORT_S <= first and last <= end + 2 * REPORT_S, (r.family, run)
        assert last - first >= 0.95 * (end - start), (r.family, first, last)


async def test_a_killed_device_is_unreachable_by_its_will_and_recovers(rig: Rig) -> None:
    """The broker publishes the device's will (LWT Offline, online false, availability offline):
    the plug is unreachable at once (never off); the device back, the plug is on again."""
    await kill_and_bring_back(rig)


async def test_zigbee2mqtt_legacy_plain_availability(broker: MqttSettings,
                                                     tmp_path: Path) -> None:
    """zigbee2mqtt before 1.x's JSON availability says plain `online` / `offline`."""
    rig = Rig("z2m", broker, tmp_path, power=60.0, report_s=0.1, legacy_availability=True)
    try:
        await kill_and_bring_back(rig, legacy_availability=True)
    finally:
        await rig.cleanup()


async def kill_and_bring_back(rig: Rig, **device: Any) -> None:
    events: list[Event] = []
    await rig.device.start(rig.settings)
    async with running_service(rig.config(), listeners=[events.append]) as service:
        def state() -> State:  # the service restores (replaces) detectors as it starts
            return service.detectors[rig.name].state

        await wait_for(lambda: state() == State.ON, 5.0)
        await rig.device.kill()
        await wait_for(lambda: state() == State.UNREACHABLE, 5.0)
        rig.device = MqttDevice(rig.family, rig.device_name, base_topic=rig.base, power=60.0,
                                report_s=0.1, **device)
        await rig.device.start(rig.settings)
        await wait_for(lambda: state() == State.ON, 5.0)
    steps = announced(events)
    assert [t.to_state for t in steps] == [State.UNREACHABLE, State.ON]
    assert steps[0].reason == "read_failures"


async def test_silence_past_stale_after_is_unreachable_stamped_at_the_last_report(
        rig: Rig) -> None:
    """A device that stays connected but says nothing: unchanged until stale_after, then
    unreachable dated back to its last report."""
    events: list[Event] = []
    await rig.device.start(rig.settings)
    async with running_service(rig.config(stale_after=0.8, poll=False) if rig.family == "tasmota"
                               else rig.config(stale_after=0.8),
                               listeners=[events.append]) as service:
        def state() -> State:  # the service restores (replaces) detectors as it starts
            return service.detectors[rig.name].state

        await wait_for(lambda: state() == State.ON, 5.0)
        await rig.device._end()  # silent from now on, still connected
        await asyncio.sleep(0.3)  # a report already on its way arrives
        last = service.pushed.sources[0]._last_report
        await wait_for(lambda: state() == State.UNREACHABLE, 5.0)
    [gone] = announced(events)
    assert gone.to_state == State.UNREACHABLE
    assert gone.ts == last


async def test_relay_off_is_off_at_once(rig: Rig) -> None:
    events: list[Event] = []
    await rig.device.start(rig.settings)
    async with running_service(rig.config(), listeners=[events.append]) as service:
        def state() -> State:  # the service restores (replaces) detectors as it starts
            return service.detectors[rig.name].state

        await wait_for(lambda: state() == State.ON, 5.0)
        rig.device.relay_on = False
        await wait_for(lambda: state() == State.OFF, 5.0)
    [off] = announced(events)
    assert (off.from_state, off.to_state, off.reason) == (State.ON, State.OFF, "relay_off")


async def test_a_counter_reset_during_a_run_keeps_the_run_energy(rig: Rig) -> None:
    """The device's energy counter drops to zero mid-run: the run's energy stays positive and
    close to what was drawn (never negative or the whole old counter)."""
    rig.device.power = 1800.0
    events: list[Event] = []
    await rig.device.start(rig.settings)
    async with running_service(rig.config(), listeners=[events.append]) as service:
        def state() -> State:  # the service restores (replaces) detectors as it starts
            return service.detectors[rig.name].state

        await wait_for(lambda: state() == State.ON, 5.0)
        await wait_for(lambda: rig.device.energy_wh() > 0.5, 5.0)
        rig.device.reset_energy()
        await wait_for(lambda: rig.device.energy_wh() > 0.2, 5.0)
        rig.device.power = 2.0
        await wait_for(lambda: any(isinstance(e, RunSummary) for e in events), 10.0)
    [run] = [e for e in events if isinstance(e, RunSummary)]
    expected = 1800.0 * run.duration_s / 3600
    assert 0 < run.energy_wh <= 1.5 * expected + 0.5, (run, expected)


BAD = {
    "garbage": b"\x00\xffnot json",
    "wrong shape": b"[1, 2, 3]",
    "NaN": None, "inf": None, "negative": None,
}


def bad_payload(family: str, kind: str) -> bytes:
    value = {"NaN": "NaN", "inf": "Infinity", "negative": "-500"}[kind]
    if family == "tasmota":
        return f'{{"ENERGY": {{"Power": {value}, "Total": 1.0}}}}'.encode()
    if family == "shelly":
        return f'{{"id": 0, "output": true, "apower": {value}}}'.encode()
    return f'{{"power": {value}, "state": "ON"}}'.encode()


async def test_every_bad_payload_is_one_clear_line_and_changes_nothing(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    events: list[Event] = []
    await rig.device.start(rig.settings)
    async with running_service(rig.config(), listeners=[events.append]) as service:
        def state() -> State:  # the service restores (replaces) detectors as it starts
            return service.detectors[rig.name].state

        await wait_for(lambda: state() == State.ON, 5.0)
        plug = service.pushed.sources[0]
        for kind, payload in BAD.items():
            before = plug.errors
            caplog.clear()
            plug._bad_logged = -1e9  # one line per message here (rate-limited in real life)
            with caplog.at_level(logging.WARNING, "plugwatch.sources.mqtt.base"):
                await publish(rig.settings, rig.topic, payload or bad_payload(rig.family, kind))
                await wait_for(lambda b=before: plug.errors > b, 5.0)  # type: ignore[misc]
            [line] = [r.getMessage() for r in caplog.records]
            assert rig.name in line and "message ignored" in line, line
            assert "\n" not in line and "Traceback" not in line
        assert state() == State.ON
    assert announced(events) == []


def test_an_mqtt_plug_without_a_broker_section_is_one_config_error() -> None:
    from plugwatch.config import config_from_dict
    from plugwatch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"plugs\[0\]\.driver: plug 'tv' reports over MQTT"):
        config_from_dict({"plugs": [{"name": "tv", "driver": "zigbee2mqtt", "device": "tv"}]})


async def test_a_broker_outage_makes_every_mqtt_plug_unreachable_with_one_reason(
        private_broker: PrivateBroker, tmp_path: Path) -> None:
    """The broker dies: every MQTT plug is unreachable (never off), all with the same reason
    naming the broker; it starts again: the client reconnects, the plugs are on again."""
    settings = MqttSettings(host="127.0.0.1", port=private_broker.port, prefix=unique("pw"))
    rigs = [Rig(family, settings, tmp_path, power=60.0, report_s=0.1) for family in FAMILIES]
    plugs = [plug_entry(r.family, r.name, r.device_name, r.base, interval=0.1) for r in rigs]
    config = mqtt_config(settings, rigs[0].database, plugs, detector=FAST)
    failures: dict[str, list[str]] = {r.name: [] for r in rigs}

    def sample(plug: str, s: object) -> None:
        if isinstance(s, ReadFailure):
            failures[plug].append(s.reason)

    for r in rigs:
        await r.device.start(settings)
    async with running_service(config, sample_listeners=[sample]) as service:
        service.mqtt.settings = replace(service.mqtt.settings, backoff_max_s=0.5)
        def states() -> list[State]:
            return [service.detectors[r.name].state for r in rigs]

        await wait_for(lambda: all(s == State.ON for s in states()), 5.0)
        private_broker.kill()
        await wait_for(lambda: all(s == State.UNREACHABLE for s in states()), 5.0)
        reasons = {tuple(f) for f in failures.values()}
        assert len(reasons) == 1, reasons
        [(reason,)] = reasons
        assert reason.startswith(f"MQTT broker 127.0.0.1:{private_broker.port} unreachable")
        private_broker.start()
        for r in rigs:  # the emulators reconnect on their own too, with their own back-off
            r.device.client.settings = replace(r.device.client.settings, backoff_max_s=0.5)
        await wait_for(lambda: all(s == State.ON for s in states()), 15.0)
    for r in rigs:
        await r.device.stop()
