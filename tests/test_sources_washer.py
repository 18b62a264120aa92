"""A real washer recording, read side by side over every polled family's protocol by the real
service: each plug sees off -> standby -> on -> standby and one run with the recording's energy."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from plugwatch.config import config_from_dict
from plugwatch.emulator.trace import trace_power
from plugwatch.model import DetectorSettings, Event, RunSummary, State, Transition
from plugwatch.testing import running_service
from tests.conftest import TRACES
from tests.families import FAMILIES
from tests.helpers import wait_for

WASHER = TRACES / "tracebase" / "Washingmachine__dev_7297E3_2012.01.08.csv"
SPEED = 1000.0  # emulated seconds per real second
INTERVAL = 0.04  # real seconds between reads: 40 emulated seconds
OFF_S = 400.0  # emulated seconds of a switched-off washer before the recording starts

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
    power_at = trace_power([0.0, *t.tolist()], [0.0, *p.tolist()])

    start, end = t[on[0] - np.flatnonzero(keep)[0]], t[on[-1] - np.flatnonzero(keep)[0]]
    inside = (t >= start) & (t < end)
    energy = float(np.sum(p[inside][:-1] * np.diff(t[inside])) / 3600)
    return power_at, float(start), float(end), energy


async def test_a_washer_cycle_gives_one_run_with_its_energy_on_every_family(tmp_path) -> None:
    """One plug per family, all replaying the recording at once: each gives off -> standby ->
    on -> standby and one run whose energy, from the plug's own counter (Wh, kWh or
    watt-minutes), is the recording's within 5 % (a read is late now and then on this shared
    machine, moving a run's edge; a wrong counter unit would be off 60 or 1000 times)."""
    power_at, start, end, cycle_wh = washer_cycle()
    devices = {f.name: await f.start(0.0, speed=SPEED) for f in FAMILIES}
    settings = DetectorSettings(  # emulated minutes, in real seconds
        window=2, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
        dwell_on_s=120 / SPEED, dwell_standby_s=1500 / SPEED, dwell_off_s=200 / SPEED,
        unreachable_after=5, gap_s=3.0)
    config = config_from_dict({"database": f"sqlite:///{tmp_path}/w.db",
                               "defaults": {"interval": INTERVAL, "timeout": 1.0},
                               "plugs": [d.entry(n) for n, d in devices.items()]},
                              detector=settings)
    events: list[Event] = []

    def runs() -> dict[str, RunSummary]:
        return {e.plug: e for e in events if isinstance(e, RunSummary)}

    try:
        async with running_service(config, listeners=[events.append]) as service:
            await wait_for(lambda: all(d.state == State.OFF
                                       for d in service.detectors.values()), 10.0)
            t0 = time.time() - OFF_S / SPEED  # real time of the recording's emulated second 0
            for device in devices.values():
                s0 = device.device.emulated_seconds()  # the recording starts now

                def shifted(s: float, s0: float = s0) -> float:
                    return power_at(s - s0 + OFF_S)

                device.outlet.power = shifted
            await wait_for(lambda: len(runs()) == len(devices), 40.0)
    finally:
        for device in devices.values():
            await device.stop()
    span = 5 * INTERVAL * SPEED
    for family in FAMILIES:
        steps = [(e.from_state, e.to_state) for e in events if isinstance(e, Transition)
                 and e.plug == family.name and e.from_state != State.UNKNOWN]
        assert steps[:3] == [(State.OFF, State.STANDBY), (State.STANDBY, State.ON),
                             (State.ON, State.STANDBY)], family.name
        run = runs()[family.name]
        assert abs(run.energy_wh - cycle_wh) <= 0.05 * cycle_wh + family.counter_wh, (
            run, cycle_wh)
        first, last = (run.start - t0) * SPEED, (run.end - t0) * SPEED
        assert start - span <= first and last <= end + span, family.name  # inside the cycle
