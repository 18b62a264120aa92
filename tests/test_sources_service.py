"""Shelly Gen2, Shelly PM, Shelly Gen1 and Tasmota over real HTTP, watched by the real service
(SQLite): every bad answer is explained in one line and makes the plug unreachable, never off; a
counter reset in the middle of a run keeps the run's energy right."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from plugwatch.config import config_from_dict
from plugwatch.emulator.http import FAULTS
from plugwatch.model import Event, RunSummary, State, Transition
from plugwatch.testing import running_service
from tests.families import HTTP_FAMILIES, Family, Running
from tests.helpers import wait_for
from tests.test_service import FAST

REASONS = {  # what the first failure line of each fault says
    "garbage": "not JSON", "shape": "bad answer from", "nan": "is not a finite number",
    "inf": "is not a finite number", "negative": "is outside 0 .. 4000 W",
    "401": "refused the credentials (HTTP 401)", "500": "HTTP 500 Internal Server Error",
    "hung": "timeout after 0.3 s",
}


async def start_all(families: list[Family], power: float, per_family: list[str],
                    ) -> dict[str, Running]:
    """One device per (family, case), named `<family>-<case>`."""
    return {f"{f.name}-{case}": await f.start(power) for f in families for case in per_family}


def config_of(devices: dict[str, Running], tmp_path: Path) -> object:
    return config_from_dict({"database": f"sqlite:///{tmp_path}/pw.db",
                             "defaults": {"interval": 0.1, "timeout": 0.3},
                             "plugs": [d.entry(name) for name, d in devices.items()]},
                            detector=FAST)


async def test_every_bad_answer_is_one_line_and_unreachable_never_off(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Each family's device goes bad in each way (garbage, wrong shape, NaN, inf, negative
    power, HTTP 401, HTTP 500, hung): each plug logs one line with the reason, one when it
    becomes unreachable, one when it answers again; it is never off meanwhile."""
    devices = await start_all(HTTP_FAMILIES, 50.0, list(FAULTS))
    events: list[Event] = []
    caplog.set_level(logging.WARNING, logger="plugwatch.plugs")
    try:
        async with running_service(config_of(devices, tmp_path),
                                   listeners=[events.append]) as service:
            def all_are(state: State) -> bool:
                return all(service.detectors[n].state == state for n in devices)

            service.failures.per_minute = 1000  # 96 lines here; a real one logs 30 a minute
            await wait_for(lambda: all_are(State.ON), 15.0)
            for name, device in devices.items():
                device.set_fault(name.rsplit("-", 1)[1])
            await wait_for(lambda: all_are(State.UNREACHABLE), 15.0)
            for device in devices.values():
                device.set_fault(None)
            await wait_for(lambda: all_are(State.ON), 15.0)
    finally:
        for device in devices.values():
            await device.stop()
    lines = [r.getMessage() for r in caplog.records]
    for name in devices:
        mine = [line for line in lines if line.startswith((f"plug {name}:", f"plug {name} "))]
        assert len(mine) == 3, mine  # first failure, unreachable, answers again
        fault = name.rsplit("-", 1)[1]
        assert "read failed: " in mine[0] and REASONS[fault] in mine[0], mine[0]
        assert "is unreachable after 5 failed reads" in mine[1], mine[1]
        assert "answers again after" in mine[2], mine[2]
        assert all("\n" not in line for line in mine)
        steps = [e.to_state for e in events if isinstance(e, Transition) and e.plug == name
                 and e.from_state != State.UNKNOWN]
        assert steps == [State.UNREACHABLE, State.ON], (name, steps)


async def test_a_counter_reset_during_a_run_keeps_the_run_energy(tmp_path: Path) -> None:
    """1.8 kW (at 3,600 emulated seconds a second), each device's own counter reset to 0 in the
    middle of the run (Gen1 on a reboot, Tasmota's EnergyReset): the run's energy stays what
    was drawn, never negative nor the whole old counter."""
    devices = {f"{f.name}-reset": await f.start(1800.0, speed=3600.0) for f in HTTP_FAMILIES}
    events: list[Event] = []
    try:
        async with running_service(config_of(devices, tmp_path),
                                   listeners=[events.append]) as service:
            await wait_for(lambda: all(service.detectors[n].state == State.ON
                                       for n in devices), 15.0)
            await wait_for(lambda: all(d.device.emulated_seconds() > 3600 for d in
                                       devices.values()), 10.0)  # a counter of >= 1.8 kWh
            for device in devices.values():
                device.device.reset_energy()
            await wait_for(lambda: all(d.device.emulated_seconds() > 9000 for d in
                                       devices.values()), 10.0)
            for device in devices.values():
                device.outlet.power = 2.0
            await wait_for(lambda: len([e for e in events if isinstance(e, RunSummary)])
                           == len(devices), 15.0)
    finally:
        for device in devices.values():
            await device.stop()
    for run in (e for e in events if isinstance(e, RunSummary)):
        drawn_wh = 1800.0 * run.duration_s  # at speed 3,600 a real second is an emulated hour
        assert 0.8 * drawn_wh <= run.energy_wh <= 1.1 * drawn_wh, (run.plug, run, drawn_wh)
