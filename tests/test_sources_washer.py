"""A real washer recording, read side by side over every polled family's protocol by the real
service: each plug sees off -> standby -> on -> standby and one run with the recording's energy.

Emulated time advances with the reads actually served, not with the wall clock: each read moves
its plug's clock (the one its emulated device runs on and its readings are stamped with) by one
interval. However late a loaded machine serves the reads, the story and its figures stay the same.
"""

from __future__ import annotations

from typing import Any

from plugwatch.config import config_from_dict
from plugwatch.model import DetectorSettings, Event, Reading, RunSummary, State, Transition
from plugwatch.testing import running_service
from tests.families import FAMILIES
from tests.helpers import Clock, wait_for
from tests.washer import OFF_S, washer_cycle

SPEED = 1500.0  # emulated seconds per plug-clock second
INTERVAL = 0.04  # plug-clock seconds per read: 60 emulated seconds


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
