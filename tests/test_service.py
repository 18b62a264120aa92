"""The real service against emulated Kasa plugs over TCP, recording into SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition
from plugwatch.store import open_store
from plugwatch.testing import emulated_config, running_service
from tests.helpers import Cued, wait_for

SPEED = 20.0  # emulated seconds per real second: energy adds up fast, timing stays real
FAST = DetectorSettings(
    window_s=0.1, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
    dwell_on_s=0.3, dwell_standby_s=1.0, dwell_off_s=0.5, unreachable_after=5, gap_s=5.0,
)


def unique(name: str) -> str:
    """A plug name of its own, so tests sharing the PostgreSQL database never see each other."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def washer_profile(real_s: float) -> float:
    """Off, standby, on, a soak pause shorter than the standby dwell, on again, standby (W)."""
    if real_s < 1.2:
        return 0.0
    if real_s < 3.0:
        return 2.0
    if 4.5 <= real_s < 4.75:
        return 2.0  # soak pause: must not end the run
    if real_s < 5.3:
        return 1000.0
    return 2.0


def by_speed(profile: Callable[[float], float]) -> Callable[[float], float]:
    return lambda emulated_s: profile(emulated_s / SPEED)


def announced(events: list[Event]) -> list[Transition]:
    """Transitions after the first decision (the start-up one from UNKNOWN may or may not exist)."""
    return [e for e in events if isinstance(e, Transition) and e.from_state != State.UNKNOWN]


async def test_washer_cycle_gives_one_run_with_the_meter_energy(db_url: str) -> None:
    """off -> standby -> on -> standby (the soak pause does not end the run); one run is recorded
    whose energy matches the emulated plug's own energy counter."""
    name = unique("washer")
    power = Cued(by_speed(washer_profile))
    plug = EmulatedPlug("HS110v1", alias=name, power=power, speed=SPEED)
    emulator = Emulator()
    [port] = await emulator.start([plug])
    events: list[Event] = []
    config = emulated_config({name: port}, db_url, interval_s=0.1, timeout_s=1.0, detector=FAST)
    try:
        async with running_service(config, listeners=[events.append]):
            await wait_for(lambda: any(isinstance(e, Transition) for e in events), 30.0)
            power.start(plug)  # the cycle from the service's first decision (off), read through
            await wait_for(lambda: any(isinstance(e, RunSummary) for e in events), 30.0)
    finally:
        await emulator.stop()
    steps = announced(events)
    assert [(t.from_state, t.to_state) for t in steps] == [
        (State.OFF, State.STANDBY), (State.STANDBY, State.ON), (State.ON, State.STANDBY)]
    [run] = [e for e in events if isinstance(e, RunSummary)]
    on_energy_wh = 1000.0 * (5.3 - 3.0 - 0.25) * SPEED / 3600  # the emulator's integral while on
    one_sample_wh = 1000.0 * 0.1 * SPEED / 3600
    assert abs(run.energy_wh - on_energy_wh) <= 2 * one_sample_wh, (run, on_energy_wh)
    assert run.peak_w == pytest.approx(1000.0, abs=1)
    store = open_store(db_url)
    try:
        stored = store.transitions(plug=name)
        assert [(t.from_state, t.to_state) for t in announced(stored)] == [
            (t.from_state, t.to_state) for t in steps]
        [stored_run] = store.runs(plug=name)
        assert stored_run.energy_wh == pytest.approx(run.energy_wh)
    finally:
        store.close()


async def test_an_offline_plug_becomes_unreachable_and_recovers(db_url: str) -> None:
    """Five failed reads give unreachable (timed at the first failure); back online, on again."""
    name = unique("fridge")
    plug = EmulatedPlug("HS110v2", alias=name, power=60.0)
    emulator = Emulator()
    [port] = await emulator.start([plug])
    events: list[Event] = []
    config = emulated_config({name: port}, db_url, interval_s=0.1, timeout_s=1.0, detector=FAST)
    try:
        async with running_service(config, listeners=[events.append]) as service:
            await wait_for(lambda: service.detectors[name].state == State.ON, 5.0)
            await emulator.set_online(plug, False)
            await wait_for(lambda: service.detectors[name].state == State.UNREACHABLE, 5.0)
            await emulator.set_online(plug, True)
            await wait_for(lambda: service.detectors[name].state == State.ON, 5.0)
    finally:
        await emulator.stop()
    steps = announced(events)
    assert [t.to_state for t in steps] == [State.UNREACHABLE, State.ON]
    store = open_store(db_url)
    try:
        assert [t.to_state for t in announced(store.transitions(plug=name))] == [
            State.UNREACHABLE, State.ON]
    finally:
        store.close()


async def test_a_hung_plug_does_not_delay_the_others(db_url: str) -> None:
    """With one plug that never answers, the others are read on time and their readings stored."""
    names = [unique("hung"), unique("tv"), unique("lamp")]
    plugs = [EmulatedPlug("HS110v2", alias=n, power=40.0) for n in names]
    plugs[0].hung = True
    emulator = Emulator()
    ports = await emulator.start(plugs)
    config = emulated_config(dict(zip(names, ports, strict=True)), db_url, interval_s=0.1,
                             timeout_s=0.3, detector=FAST)
    try:
        async with running_service(config) as service:
            started = time.time()
            await wait_for(lambda: service.detectors[names[0]].state == State.UNREACHABLE, 10.0)
            await asyncio.sleep(0.5)
            elapsed = time.time() - started
            stats = service.sampler.stats
    finally:
        await emulator.stop()
    assert service.detectors[names[0]].state == State.UNREACHABLE
    assert stats.lateness_percentile(99) < 0.25  # well under the hung plug's 0.3 s timeout
    store = open_store(db_url)
    try:
        for name in names[1:]:
            assert len(store.readings(name)) >= 0.7 * elapsed / 0.1  # a reading per 0.1 s tick
            assert service.detectors[name].state == State.ON
    finally:
        store.close()
