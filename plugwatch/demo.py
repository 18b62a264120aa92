"""`plugwatch demo`: the real service against emulated plugs, on a local SQLite file.

Three emulated Kasa plugs are served in-process over TCP on 127.0.0.1: a washer doing a sped-up
cycle (heating, washing, a soak pause the detector must not call the end, spinning), a TV switched
on and back to standby, and a fridge plug that drops off the network and comes back. The service
samples them every half second with short dwell times, so the whole story takes about a minute.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import DetectorSettings, Event, Transition

INTERVAL_S = 0.5
DEMO_SETTINGS = DetectorSettings(
    window=3, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
    dwell_on_s=1.5, dwell_standby_s=6.0, dwell_off_s=2.0, unreachable_after=3, gap_s=10.0,
)


def washer_power(minute: float) -> float:
    """A washing machine's draw (W) at `minute` of emulated time: one 55-minute programme."""
    if minute < 4:
        return 0.0  # switched off at the appliance
    if minute < 8:
        return 1.6  # panel lit, programme chosen
    if minute < 20:
        return 2050.0 + 30 * math.sin(minute * 7)  # heating the water
    if minute < 38:
        return 280.0 + 120 * math.sin(minute * 3)  # drum turning
    if minute < 42:
        return 2.0  # soak pause: standby-level, shorter than the standby dwell
    if minute < 52:
        return 480.0 + 60 * math.sin(minute * 11)  # spin
    return 1.6  # finished, panel still lit


def tv_power(minute: float) -> float:
    """A TV's draw (W): standby, half an hour of watching, standby again."""
    return 88.0 + 4 * math.sin(minute) if 14 <= minute < 44 else 0.9


def fridge_power(minute: float) -> float:
    """A fridge compressor cycling (W)."""
    return 70.0 if (minute % 20) < 12 else 35.0


def _per_minute(profile: Callable[[float], float]) -> Callable[[float], float]:
    return lambda emulated_s: profile(emulated_s / 60.0)


async def run_demo(
    speed: float = 60.0, duration_s: float = 90.0, db_path: str = "plugwatch-demo.db",
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo for `duration_s` real seconds (or until Ctrl-C); returns the summary."""
    from plugwatch.formatting import format_duration, iso
    from plugwatch.service import Service, install_stop_signals
    from plugwatch.store import open_store

    plugs = {
        "washer": EmulatedPlug("HS110v2", alias="washer", power=_per_minute(washer_power),
                               speed=speed),
        "tv": EmulatedPlug("KP115", alias="tv", power=_per_minute(tv_power), speed=speed),
        "fridge": EmulatedPlug("HS110v1", alias="fridge", power=_per_minute(fridge_power),
                               speed=speed),
    }
    emulator = Emulator()
    ports = await emulator.start(list(plugs.values()))
    config = demo_config(dict(zip(plugs, ports, strict=True)), f"sqlite:///{Path(db_path)}")
    store = await asyncio.to_thread(open_store, config.database)
    started = time.time()
    counts = {"transitions": 0, "runs": 0}

    def show(event: Event) -> None:
        clock = f"+{event.ts - started if isinstance(event, Transition) else 0:5.1f}s"
        if isinstance(event, Transition):
            counts["transitions"] += 1
            out(f"{clock} {event.plug:<7} {event.from_state} -> {event.to_state} ({event.reason})")
        else:
            counts["runs"] += 1
            out(f"        {event.plug:<7} run finished: {format_duration(event.duration_s)} "
                f"real time, {event.energy_wh:.1f} Wh, peak {event.peak_w:.0f} W")

    out(f"plugwatch demo: 3 emulated plugs on 127.0.0.1 (ports {', '.join(map(str, ports))}), "
        f"emulated time x{speed:g}, recording to {db_path}; stops after {duration_s:g} s "
        "(Ctrl-C stops earlier)")
    stop = asyncio.Event()
    install_stop_signals(stop)
    service = Service(config, store, listeners=[show])
    task = asyncio.create_task(service.run(stop))
    try:
        await _script(emulator, plugs["fridge"], started, duration_s, stop)
    finally:
        stop.set()
        await task
        await emulator.stop()
    states = {name: str(det.state) for name, det in service.detectors.items()}
    store.close()
    out(f"demo finished after {time.time() - started:.0f} s: {counts['transitions']} transitions, "
        f"{counts['runs']} runs recorded in {db_path}")
    for name, state in states.items():
        since = service.detectors[name].since
        out(f"  {name:<7} {state:<12} since {iso(since) if since else '-'}")
    out(f"see them again with: plugwatch history --config <a config with database: "
        f"sqlite:///{db_path}> --runs")
    return {**counts, "states": states}


async def _script(
    emulator: Emulator, flaky: EmulatedPlug, started: float, duration_s: float,
    stop: asyncio.Event,
) -> None:
    """Take the fridge plug off the network at 35 % of the demo and back at 55 %."""
    timeline = [(0.35 * duration_s, False), (0.55 * duration_s, True)]
    for at, online in timeline:
        if await _wait(stop, started + at - time.time()):
            return
        await emulator.set_online(flaky, online)
    await _wait(stop, started + duration_s - time.time())


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True when `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        return True
    except TimeoutError:
        return False


def demo_config(ports: dict[str, int], database: str) -> Any:
    """A Config (no file) with the demo plugs on 127.0.0.1 and the demo detector settings."""
    from plugwatch.config import config_from_dict

    return config_from_dict({
        "database": database,
        "defaults": {"interval": INTERVAL_S, "timeout": 0.4},
        "plugs": [{"name": name, "driver": "kasa", "host": f"127.0.0.1:{port}"}
                  for name, port in ports.items()],
    }, detector=DEMO_SETTINGS)
