"""The contract every polled driver keeps, run against each family's emulator over its real
protocol (Kasa TCP, Shelly Gen2 / PM / Gen1 HTTP, Tasmota HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from plugwatch.config import config_from_dict
from plugwatch.errors import BadAnswer, DeviceTimeout, DeviceUnreachable
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition
from plugwatch.testing import running_service
from tests.conftest import TRACES
from tests.families import FAMILIES, Family, ids
from tests.helpers import wait_for

WASHER = TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv"
SPEED = 2000.0  # emulated seconds per real second
INTERVAL = 0.04  # real seconds between reads: 80 emulated seconds
OFF_S = 400.0  # emulated seconds of a switched-off washer before the recording starts

pytestmark = pytest.mark.parametrize("family", FAMILIES, ids=ids(FAMILIES))


def washer_cycle() -> tuple[Callable[[float], float], float, float, float]:
    """(power of emulated seconds, cycle start, cycle end, energy Wh of the cycle) from the real
    tracebase washing machine: 0 W while switched off (OFF_S), then the recording from 40 minutes
    before its cycle. The recording quantises the panel's ~1 W to 0/2 W: 1.5 W stands in below
    2 W."""
    from plugwatch.traces.reader import read_trace

    trace = read_trace(WASHER)
    ts, power = np.asarray(trace.ts), np.asarray(trace.power_w)
    on = np.flatnonzero(power > 10)
    keep = (ts >= ts[on[0]] - 2400) & (ts <= ts[on[-1]] + 3000)
    t = ts[keep] - ts[keep][0] + OFF_S
    p = np.maximum(power[keep], 1.5)
    times, watts = [0.0, *t.tolist()], [0.0, *p.tolist()]

    def power_at(emulated_s: float) -> float:
        i = int(np.searchsorted(times, emulated_s, side="right")) - 1
        return watts[max(i, 0)]

    start, end = t[on[0] - np.flatnonzero(keep)[0]], t[on[-1] - np.flatnonzero(keep)[0]]
    inside = (t >= start) & (t < end)
    energy = float(np.sum(p[inside][:-1] * np.diff(t[inside])) / 3600)
    return power_at, float(start), float(end), energy


async def test_a_washer_cycle_gives_one_run_with_its_energy(family: Family, tmp_path) -> None:
    """off -> standby -> on -> standby from a real washer recording, read over the family's
    protocol by the real service: one run whose energy (from the plug's own counter) is the
    recording's (within 5 %: reads come late on a loaded machine)."""
    power_at, start, end, cycle_wh = washer_cycle()
    device = await family.start(0.0, speed=SPEED)
    settings = DetectorSettings(  # emulated minutes, in real seconds
        window=2, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
        dwell_on_s=120 / SPEED, dwell_standby_s=1500 / SPEED, dwell_off_s=200 / SPEED,
        unreachable_after=5, gap_s=2.0)
    config = config_from_dict({"database": f"sqlite:///{tmp_path}/w.db",
                               "defaults": {"interval": INTERVAL, "timeout": 1.0},
                               "plugs": [device.entry("washer")]}, detector=settings)
    events: list[Event] = []
    try:
        async with running_service(config, listeners=[events.append]) as service:
            await wait_for(lambda: service.detectors["washer"].state == State.OFF, 10.0)
            s0 = device.device.emulated_seconds()  # the recording starts now
            t0 = time.time() - OFF_S / SPEED  # real time of the recording's emulated second 0
            device.outlet.power = lambda s: power_at(s - s0 + OFF_S)
            await wait_for(lambda: any(isinstance(e, RunSummary) for e in events), 30.0)
    finally:
        await device.stop()
    steps = [(e.from_state, e.to_state) for e in events
             if isinstance(e, Transition) and e.from_state != State.UNKNOWN]
    assert steps[:3] == [(State.OFF, State.STANDBY), (State.STANDBY, State.ON),
                         (State.ON, State.STANDBY)]
    [run] = [e for e in events if isinstance(e, RunSummary)]
    # A read on this shared 2-core machine is now and then late by several intervals (hundreds
    # of emulated seconds), moving a run's edge: 5 % and 5 reads. A wrong counter unit (Wh, kWh,
    # watt-minutes) would be off by a factor of 60 or 1000.
    span = 5 * INTERVAL * SPEED
    assert abs(run.energy_wh - cycle_wh) <= 0.05 * cycle_wh + family.counter_wh, (run, cycle_wh)
    first, last = (run.start - t0) * SPEED, (run.end - t0) * SPEED
    assert start - span <= first and last <= end + span  # inside the recorded cycle


async def test_a_reading_has_power_relay_and_the_plugs_own_counter(family: Family) -> None:
    """A steady 120 W load: power as measured, relay closed, a counter that grows."""
    device = await family.start(120.0, speed=3600.0)
    driver = device.driver()
    try:
        first = await driver.read(time.time())
        time.sleep(0.05)
        second = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert first.power_w == pytest.approx(120.0, abs=0.5)
    assert first.relay_on is (True if family.has_relay else None)
    assert second.energy_kwh is not None and first.energy_kwh is not None
    assert second.energy_kwh > first.energy_kwh


async def test_relay_off_reads_as_relay_off(family: Family) -> None:
    """An open relay is reported as such (0 W); a meter without a relay reports no relay."""
    device = await family.start(80.0)
    device.outlet.relay_on = False
    driver = device.driver()
    try:
        reading = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert reading.power_w == 0.0
    assert reading.relay_on is (False if family.has_relay else None)


async def test_a_counter_reset_is_reported_as_it_is(family: Family) -> None:
    """The plug's counter restarting at 0 (a reboot, a reset) shows as a drop, not smoothed."""
    device = await family.start(2000.0, speed=3600.0)
    driver = device.driver()
    try:
        time.sleep(0.1)
        before = await driver.read(time.time())
        device.device.reset_energy() if hasattr(device.device, "reset_energy") else \
            device.outlet.reset_energy()
        after = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert before.energy_kwh is not None and after.energy_kwh is not None
    assert before.energy_kwh > 0.1 and after.energy_kwh < 0.05


async def test_a_hung_plug_is_one_timeout_line(family: Family) -> None:
    """A plug that accepts the request and never answers: DeviceTimeout after the timeout."""
    device = await family.start(50.0)
    device.set_fault("hung")
    driver = device.driver(timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(DeviceTimeout) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert time.monotonic() - started < 1.0
    assert str(info.value).startswith(f"timeout after 0.3 s reading 127.0.0.1:{device.port}")


async def test_an_offline_plug_is_unreachable_and_comes_back(family: Family) -> None:
    """Connections refused: DeviceUnreachable naming host:port; back online, readings again."""
    device = await family.start(50.0)
    driver = device.driver()
    try:
        await driver.read(time.time())
        await device.set_online(False)
        with pytest.raises(DeviceUnreachable) as info:
            await driver.read(time.time())
        await device.set_online(True)
        back = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert f"127.0.0.1:{device.port}" in str(info.value)
    assert "\n" not in str(info.value)
    assert back.power_w == pytest.approx(50.0, abs=0.5)


async def test_a_wrong_driver_for_the_device_is_one_line(family: Family) -> None:
    """Pointing another family's driver at this device gives one BadAnswer line, no traceback."""
    device = await family.start(50.0)
    other = "tasmota" if family.driver == "shelly" else "shelly"
    from plugwatch.sources import make_driver

    config = config_from_dict({"defaults": {"timeout": 0.5}, "plugs": [
        {"name": "p", "driver": other, "host": f"127.0.0.1:{device.port}"}]})
    driver = make_driver(config.plugs[0])
    try:
        with pytest.raises((BadAnswer, DeviceUnreachable)) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert f"127.0.0.1:{device.port}" in str(info.value) and "\n" not in str(info.value)
