"""`plugwatch demo`: the real service against emulated plugs, on a local SQLite file.

Three emulated plugs of three families are served in-process on 127.0.0.1, each over its real
protocol: a Kasa plug (TCP) behind a washer doing a sped-up cycle (heating, washing, a soak pause
the detector must not call the end, spinning), a Shelly Plus Plug S (HTTP RPC) behind a TV switched
on and back to standby, and a Tasmota plug (HTTP) behind a fridge that drops off the network and
comes back. The service
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
from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.http_server import HttpEmulator
from plugwatch.model import DetectorSettings, Event, Transition

DEMO_PLUGS = ("washer", "tv", "fridge")
STORY_MIN = 80.0  # emulated minutes the whole story takes (the default duration)
OFFLINE_MIN = (26.0, 36.0)  # the fridge plug is off the network between these emulated minutes


def demo_settings(speed: float) -> tuple[float, DetectorSettings]:
    """(interval s, detector settings) in real seconds for an emulated-time `speed`.

    Chosen in emulated time (a sample every 30 s, standby must hold 6 min, ...) and divided by the
    speed, so the story looks the same at any speed.
    """
    interval = max(0.05, 30.0 / speed)
    return interval, DetectorSettings(
        window_s=2 * interval, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
        dwell_on_s=90.0 / speed, dwell_standby_s=360.0 / speed, dwell_off_s=120.0 / speed,
        unreachable_after=3, gap_s=max(20 * interval, 600.0 / speed),
    )


def washer_power(minute: float) -> float:
    """A washing machine's draw (W) at `minute` of emulated time: one 40-minute programme."""
    if minute < 4:
        return 0.0  # switched off at the appliance
    if minute < 14:
        return 1.6  # panel lit, programme chosen
    if minute < 24:
        return 2050.0 + 30 * math.sin(minute * 7)  # heating the water
    if minute < 40:
        return 280.0 + 120 * math.sin(minute * 3)  # drum turning
    if minute < 44:
        return 2.0  # soak pause: standby-level, shorter than the standby dwell
    if minute < 54:
        return 480.0 + 60 * math.sin(minute * 11)  # spin
    return 1.6  # finished, panel still lit


def tv_power(minute: float) -> float:
    """A TV's draw (W): standby, half an hour of watching, standby again."""
    return 88.0 + 4 * math.sin(minute) if 20 <= minute < 50 else 0.9


def fridge_power(minute: float) -> float:
    """A fridge compressor cycling (W)."""
    return 70.0 if (minute % 20) < 12 else 35.0


def _per_minute(profile: Callable[[float], float]) -> Callable[[float], float]:
    return lambda emulated_s: profile(emulated_s / 60.0)


async def run_demo(
    speed: float = 60.0, duration_s: float | None = None, db_path: str = "plugwatch-demo.db",
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo for `duration_s` real seconds (default: the whole story) or until Ctrl-C.

    Returns the summary: counts of transitions and runs, and each plug's final state.
    """
    if duration_s is None:
        duration_s = STORY_MIN * 60.0 / speed
    from plugwatch.formatting import format_duration, iso
    from plugwatch.service.service import Service, install_stop_signals
    from plugwatch.store import open_store
    from plugwatch.testing import emulated_config

    await asyncio.to_thread(_fresh_demo_database, Path(db_path))
    store = await asyncio.to_thread(open_store, f"sqlite:///{Path(db_path)}")  # before the clock
    started = time.time()
    washer = EmulatedPlug("HS110v2", alias="washer", power=_per_minute(washer_power), speed=speed)
    tv = EmulatedHttpDevice("shelly2", alias="tv", power=_per_minute(tv_power), speed=speed)
    fridge = EmulatedHttpDevice("tasmota", alias="fridge", power=_per_minute(fridge_power),
                                speed=speed)
    emulator, http_emulator = Emulator(), HttpEmulator()
    ports = [*await emulator.start([washer]), *await http_emulator.start([tv, fridge])]
    interval, settings = demo_settings(speed)
    config = emulated_config(dict(zip(DEMO_PLUGS, ports, strict=True)),
                             f"sqlite:///{Path(db_path)}", interval_s=interval, timeout_s=0.5,
                             detector=settings, drivers={"tv": "shelly", "fridge": "tasmota"})
    counts = {"transitions": 0, "runs": 0}

    stop = asyncio.Event()

    def show(event: Event) -> None:
        try:
            _show(event)
        except BrokenPipeError:  # `plugwatch demo | head`: the reader has gone, so stop
            stop.set()

    def _show(event: Event) -> None:
        if isinstance(event, Transition):
            counts["transitions"] += 1
            at = (event.ts - started) * speed
            out(f"[{time.time() - started:5.1f} s | emulated {int(at // 60):02d}:"
                f"{int(at % 60):02d}] {event.plug:<7} {event.from_state} -> {event.to_state} "
                f"({event.reason})")
        else:
            counts["runs"] += 1
            out(f"{'':29}{event.plug:<7} run finished: "
                f"{format_duration(event.duration_s * speed)} emulated, "
                f"{event.energy_wh:.0f} Wh (plug meter), peak {event.peak_w:.0f} W")

    out(f"plugwatch demo: 3 emulated plugs on 127.0.0.1: washer Kasa :{ports[0]}, tv Shelly "
        f":{ports[1]}, fridge Tasmota :{ports[2]}; "
        f"emulated time x{speed:g}, recording to {db_path}; stops after {duration_s:g} s "
        "(Ctrl-C stops earlier)")
    install_stop_signals(stop)
    service = Service(config, store, listeners=[show])
    task = asyncio.create_task(service.run(stop))
    try:
        offline = [started + m * 60.0 / speed for m in OFFLINE_MIN]
        await _script(http_emulator, fridge, offline, started + duration_s, stop)
    finally:
        stop.set()
        await task
        await emulator.stop()
        await http_emulator.stop()
    states = {name: str(det.state) for name, det in service.detectors.items()}
    store.close()
    out(f"demo finished after {time.time() - started:.0f} s: {counts['transitions']} transitions, "
        f"{counts['runs']} runs recorded in {db_path}")
    for name, state in states.items():
        since = service.detectors[name].since
        out(f"  {name:<7} {state:<12} since {iso(since) if since else '-'}")
    out(f"see them again: plugwatch history --database sqlite:///{db_path} --runs")
    return {**counts, "states": states}


def _fresh_demo_database(path: Path) -> None:
    """Remove an earlier demo's database (each demo tells its story from the start); refuse to
    touch a file that holds other plugs than the demo's."""
    from plugwatch.errors import ConfigError
    from plugwatch.store import open_store

    if not path.exists():
        return
    store = open_store(f"sqlite:///{path}")
    try:
        names = {row["plug"] for row in store.status()}
    finally:
        store.close()
    if not names <= set(DEMO_PLUGS):
        raise ConfigError(f"{path} is not a demo database (it has plugs {', '.join(sorted(names))})"
                          ": choose another --db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _script(
    emulator: HttpEmulator, flaky: EmulatedHttpDevice, offline: list[float], end: float,
    stop: asyncio.Event,
) -> None:
    """Take the fridge plug off the network at offline[0] and back at offline[1] (epoch s)."""
    for at, online in zip(offline, (False, True), strict=True):
        if await _wait(stop, at - time.time()):
            return
        await emulator.set_online(flaky, online)
    await _wait(stop, end - time.time())


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True when `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        return True
    except TimeoutError:
        return False
