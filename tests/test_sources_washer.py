"""A real washer recording, read side by side over every polled family's protocol by the real
service: each plug sees off -> standby -> on -> standby and one run with the recording's energy.

Emulated time advances with the reads actually served, not with the wall clock: each read moves
its plug's clock (the one its emulated device runs on and its readings are stamped with) by one
interval. However late a loaded machine serves the reads, the story and its figures stay the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plugwatch.config import config_from_dict
from plugwatch.emulator.trace import trace_power
from plugwatch.model import DetectorSettings, Event, Reading, RunSummary, State, Transition
from plugwatch.testing import running_service
from tests.conftest import TRACES
from tests.families import FAMILIES
from tests.helpers import Clock, wait_for

WASHER = TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv"
SPEED = 1500.0  # emulated seconds per plug-clock second
INTERVAL = 0.04  # plug-clock seconds per read: 60 emulated seconds
OFF_S = 400.0  # emulated seconds of a switched-off washer before the recording starts


def washer_cycle() -> tuple[Any, float, float, float]:
    """(power of emulated seconds, cycle start, cycle end, energy Wh of the cycle) from the real
    tracebase washing machine: 0 W while switched off (OFF_S), then the recording from 40 minutes
    before its cycle. The recording quantises the panel's ~1 W to 0/2 W: 1.5 W stands in below
    2 W. After the recording the washer stays in standby."""
    from plugwatch.traces.reader import read_trace

    trace = read_trace(WASHER)
    ts, power = np.asarray(trace.ts), np.asarray(trace.power_w)
    on = np.flatnonzero(power > 10)
    keep = (ts >= ts[on[0]] - 2400) & (ts <= ts[on[-1]] + 3000)
    t = ts[keep] - ts[keep][0] + OFF_S
    p = np.maximum(power[keep], 1.5)
    # the last standby level held for good: the emulator loops a trace, and a slow family still
    # polled while the others finish must not see the recording start again at 0 W
    power_at = trace_power([0.0, *t.tolist(), float(t[-1]) + 1e9], [0.0, *p.tolist(), float(p[-1])])
    start, end = t[on[0] - np.flatnonzero(keep)[0]], t[on[-1] - np.flatnonzero(keep)[0]]
    inside = (t >= start) & (t < end)
    energy = float(np.sum(p[inside][:-1] * np.diff(t[inside])) / 3600)
    return power_at, float(start), float(end), energy


class SteppedDriver:
    """A driver whose every read first moves its plug's clock on by one interval."""

    def __init__(self, driver: Any, clock: Clock) -> None:
        self.driver, self.clock = driver, clock
        self.where = driver.where

    async def read(self, now: float) -> Reading:
        self.clock.now += INTERVAL
        reading: Reading = await self.driver.read(self.clock.now)
        return reading

    async def close(self) -> None:
        await self.driver.close()


async def test_a_washer_cycle_gives_one_run_with_its_energy_on_every_family(tmp_path) -> None:
    """One plug per family, all replaying the recording: each gives off -> standby -> on ->
    standby and one run whose energy, from the plug's own counter (Wh, kWh or watt-minutes),
    is the recording's within 1 % (a wrong counter unit would be off 60 or 1000 times)."""
    power_at, start, end, cycle_wh = washer_cycle()
    clocks = {f.name: Clock(1.8e9) for f in FAMILIES}
    devices = {f.name: await f.start(0.0, speed=SPEED, clock=clocks[f.name]) for f in FAMILIES}
    settings = DetectorSettings(  # emulated minutes, in plug-clock seconds
        window_s=INTERVAL, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
        dwell_on_s=120 / SPEED, dwell_standby_s=1500 / SPEED, dwell_off_s=200 / SPEED,
        unreachable_after=5, gap_s=3.0)
    config = config_from_dict({"database": f"sqlite:///{tmp_path}/w.db",
                               "defaults": {"interval": 0.03, "timeout": 2.0},
                               "plugs": [d.entry(n) for n, d in devices.items()]},
                              detector=settings)
    events: list[Event] = []

    def runs() -> dict[str, RunSummary]:
        return {e.plug: e for e in events if isinstance(e, RunSummary)}

    t0: dict[str, float] = {}
    try:
        async with running_service(config, listeners=[events.append]) as service:
            for plug in service.sampler.plugs:
                plug.driver = SteppedDriver(plug.driver, clocks[plug.name])
            await wait_for(lambda: all(d.state == State.OFF
                                       for d in service.detectors.values()), 30.0)
            for name, device in devices.items():
                s0 = device.device.emulated_seconds()  # the recording starts now
                t0[name] = clocks[name].now - OFF_S / SPEED  # its emulated second 0

                def shifted(s: float, s0: float = s0) -> float:
                    return float(power_at(s - s0 + OFF_S))

                device.outlet.power = shifted
            await wait_for(lambda: len(runs()) == len(devices), 90.0)
    finally:
        for device in devices.values():
            await device.stop()
    for family in FAMILIES:
        steps = [(e.from_state, e.to_state) for e in events if isinstance(e, Transition)
                 and e.plug == family.name and e.from_state != State.UNKNOWN]
        assert steps == [(State.OFF, State.STANDBY), (State.STANDBY, State.ON),
                         (State.ON, State.STANDBY)], family.name
        run = runs()[family.name]
        assert abs(run.energy_wh - cycle_wh) <= 0.01 * cycle_wh + family.counter_wh, (
            run, cycle_wh)
        first = (run.start - t0[family.name]) * SPEED
        last = (run.end - t0[family.name]) * SPEED
        # inside the cycle, and nearly all of it (a read a minute misses a short last blip)
        reads = 3 * INTERVAL * SPEED
        assert start - reads <= first and last <= end + reads, (family.name, first, last)
        assert last - first >= 0.95 * (end - start), (family.name, first, last)
