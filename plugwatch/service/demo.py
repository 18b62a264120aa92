"""`plugwatch demo`: the real service against emulated plugs, on a local SQLite file.

Three emulated plugs of three families are served in-process on 127.0.0.1, each over its real
protocol: a Kasa plug (TCP) behind a washer doing a sped-up cycle (heating, washing, a soak pause
the detector must not call the end, spinning), a Shelly Plus Plug S (HTTP RPC) behind a TV switched
on and back to standby, and a Tasmota plug (HTTP) behind a fridge that drops off the network and
comes back. Two rules
notify a local inbox (an HTTP receiver on 127.0.0.1, through apprise's json:// like a phone's push
service): the washer has finished, the fridge has been unreachable for 5 minutes.

Time is emulated throughout: the plugs, the detector, the rules and the database all see emulated
time (`speed` times faster than real), so the 80-minute story takes 80 s at the default speed and
`history` of the demo's database shows its runs with their emulated durations. The story is dated
so that it ends at the real time the demo ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.http_server import HttpEmulator
from plugwatch.model import DetectorSettings, Event, Sample, State, Transition
from plugwatch.service.service import Service, install_stop_signals

DEMO_PLUGS = ("washer", "tv", "fridge")
STORY_MIN = 80.0  # emulated minutes the whole story takes (the default duration)
OFFLINE_MIN = (26.0, 36.0)  # the fridge plug is off the network between these emulated minutes


DEMO_RULES = [
    {"name": "washer-done", "plugs": ["washer"],
     "when": {"from": "on", "to": ["standby", "off"], "min_duration": "10m"}, "notify": ["inbox"],
     "title": "{{ plug }} finished",
     "body": "Ran {{ run.duration }}, used {{ run.energy_wh | energy }} "
             "(peak {{ run.peak_w | round | int }} W)."},
    {"name": "fridge-unreachable", "plugs": ["fridge"], "when": {"to": "unreachable"},
     "for": "5m", "notify": ["inbox"], "title": "{{ plug }} is unreachable",
     "body": "{{ plug }} has not answered for {{ duration }}: check its power and Wi-Fi."},
]


def demo_settings(speed: float) -> tuple[float, DetectorSettings]:
    """(real sampling interval s, detector settings in emulated time) for a `speed`.

    A sample every 30 emulated seconds (divided by the speed for the real interval); on must hold
    90 s, standby 6 min, off 2 min, averaged over a minute, all in emulated time, so the story is
    the same at any speed.
    """
    interval = max(0.05, 30.0 / speed)
    return interval, DetectorSettings(
        window_s=60.0, standby_w=0.5, standby_band_w=0.2, on_w=10.0, on_band_w=2.0,
        dwell_on_s=90.0, dwell_standby_s=360.0, dwell_off_s=120.0,
        unreachable_after=3, gap_s=max(20 * interval * speed, 600.0),
    )


class EmulatedClock:
    """The story's time: stands still until `start()`, then runs `speed` times as fast as the
    real clock; its epoch time is dated so that it equals the real time when the story ends."""

    def __init__(self, speed: float, duration_s: float) -> None:
        self.speed = speed
        self.duration_s = duration_s  # real seconds the story is given
        self.real_start = math.inf  # epoch time of start(); inf until then
        self.story_start = 0.0  # the emulated epoch time at start()
        self._mono_start = math.inf

    def start(self) -> None:
        """Let emulated time run from now."""
        self._mono_start = time.monotonic()
        self.real_start = time.time()
        self.story_start = self.real_start + self.duration_s * (1 - self.speed)

    @property
    def running(self) -> bool:
        """True once start() was called."""
        return self._mono_start != math.inf

    def elapsed(self) -> float:
        """Real (monotonic) seconds since start(), 0 before: the emulated plugs' clock."""
        return max(0.0, time.monotonic() - self._mono_start)

    def at(self, real_ts: float) -> float:
        """The emulated epoch time of a real epoch time."""
        return self.story_start + (real_ts - self.real_start) * self.speed

    def __call__(self) -> float:
        return self.at(time.time())

    def story(self, emulated_ts: float) -> str:
        """An emulated time as "mm:ss" since the story began (what the demo prints)."""
        seconds = max(0, int(emulated_ts - self.story_start))
        return f"{seconds // 60:02d}:{seconds % 60:02d}"


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

    Returns the summary: counts of transitions, runs and notifications, each plug's final state.
    """
    if duration_s is None:
        duration_s = STORY_MIN * 60.0 / speed
    from plugwatch.config.loader import Target
    from plugwatch.emulator.inbox import Inbox, Message
    from plugwatch.formatting import format_duration, format_energy, plural
    from plugwatch.rules import Rule
    from plugwatch.service.alerting import Alerting
    from plugwatch.store import open_store
    from plugwatch.testing import emulated_config

    await asyncio.to_thread(_fresh_demo_database, Path(db_path))
    store = await asyncio.to_thread(open_store, f"sqlite:///{Path(db_path)}")  # before the clock
    await asyncio.to_thread(_warm_apprise)
    clock = EmulatedClock(speed, duration_s)  # the plugs' time stands still until sampling runs
    washer = EmulatedPlug("HS110v2", alias="washer", power=_per_minute(washer_power), speed=speed,
                          clock=clock.elapsed)
    tv = EmulatedHttpDevice("shelly2", alias="tv", power=_per_minute(tv_power), speed=speed,
                            clock=clock.elapsed)
    fridge = EmulatedHttpDevice("tasmota", alias="fridge", power=_per_minute(fridge_power),
                                speed=speed, clock=clock.elapsed)
    emulator, http_emulator = Emulator(), HttpEmulator()
    ports = [*await emulator.start([washer]), *await http_emulator.start([tv, fridge])]
    counts = {"transitions": 0, "runs": 0, "notifications": 0}
    stop = asyncio.Event()

    def show(line: str) -> None:
        try:
            out(line)
        except BrokenPipeError:  # `plugwatch demo | head`: the reader has gone, so stop
            stop.set()

    def on_event(event: Event) -> None:
        if isinstance(event, Transition) and event.from_state is State.UNKNOWN:
            show(f"[{clock.story(event.ts)}] {event.plug:<7} state {event.to_state} "
                 f"({event.reason})")  # the first state decided for a new plug
        elif isinstance(event, Transition):
            counts["transitions"] += 1
            show(f"[{clock.story(event.ts)}] {event.plug:<7} {event.from_state} -> "
                 f"{event.to_state} ({event.reason})")
        else:
            counts["runs"] += 1
            show(f"{'':8}{event.plug:<7} run finished: {format_duration(event.duration_s)}, "
                 f"{format_energy(event.energy_wh)} (plug meter), peak {event.peak_w:.0f} W")

    def on_message(message: Message) -> None:
        counts["notifications"] += 1
        show(f"[{clock.story(clock())}] inbox   notification: {message.title}: {message.body}")

    inbox = Inbox(on_message)
    await inbox.start()
    interval, settings = demo_settings(speed)
    config = emulated_config(dict(zip(DEMO_PLUGS, ports, strict=True)),
                             f"sqlite:///{Path(db_path)}", interval_s=interval, timeout_s=0.5,
                             detector=settings, drivers={"tv": "shelly", "fridge": "tasmota"})
    config = dataclasses.replace(config, targets={"inbox": Target(inbox.url)})
    rules = [Rule.model_validate(rule) for rule in DEMO_RULES]
    alerting = Alerting(config, store, rules, clock=clock, tick_s=max(0.05, min(1.0, 10 / speed)))
    show(f"plugwatch demo: 3 emulated plugs on 127.0.0.1: washer Kasa :{ports[0]}, tv Shelly "
         f":{ports[1]}, fridge Tasmota :{ports[2]}; {plural(len(rules), 'rule')} notifying a "
         f"local inbox ({inbox.url}); recording to {db_path}")
    show(f"emulated time runs x{speed:g}: the {STORY_MIN:g}-minute story takes {duration_s:g} s "
         "(Ctrl-C stops earlier); times below are emulated [mm:ss]")
    install_stop_signals(stop)
    service = DemoService(config, store, clock, on_events=alerting.on_events,
                          kv_state=alerting.kv_state, listeners=[on_event])
    tasks = [asyncio.create_task(service.run(stop)), asyncio.create_task(alerting.run(stop))]
    try:
        await _wait_any(stop, service.started)
        clock.start()
        started = clock.real_start
        offline = [started + m * 60.0 / speed for m in OFFLINE_MIN]
        await _script(http_emulator, fridge, offline, started + duration_s, stop)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await emulator.stop()
        await http_emulator.stop()
        await inbox.stop()
    states = {name: str(det.state) for name, det in service.detectors.items()}
    store.close()
    emulated = format_duration(clock() - clock.story_start)
    show(f"demo finished after {time.time() - started:.0f} s ({emulated} emulated): "
         f"{plural(counts['transitions'], 'transition')}, {plural(counts['runs'], 'run')}, "
         f"{plural(counts['notifications'], 'notification')}")
    for name, state in states.items():
        since = service.detectors[name].since
        show(f"  {name:<7} {state:<12} since {clock.story(since) if since else '-'}")
    show(f"see them again: plugwatch history --database sqlite:///{db_path} --runs  (--alerts)")
    return {**counts, "states": states}


class DemoService(Service):
    """The real Service, with each sample stamped in emulated time before the detector sees it.

    Sampling itself is scheduled in real time (the sampler's clock); only what is recorded and
    decided carries emulated time.
    """

    def __init__(self, config: Any, store: Any, clock: EmulatedClock, **kw: Any) -> None:
        super().__init__(config, store, **kw)
        self.emulated = clock

    def handle_sample(self, plug: str, sample: Sample, record: bool = True) -> None:
        """Re-stamp the sample in emulated time, then handle it as the service does (a sample
        taken before the story began is dropped)."""
        if self.emulated.running and sample.ts >= self.emulated.real_start:
            super().handle_sample(plug, dataclasses.replace(sample, ts=self.emulated.at(sample.ts)),
                                  record)


def _warm_apprise() -> None:
    """Import apprise and load its json:// plugin now (about a second) rather than when the
    first message is due, which at x60 would be a minute late."""
    import apprise

    apprise.Apprise().add("json://127.0.0.1/")


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


async def _wait_any(*events: asyncio.Event) -> None:
    """Return as soon as one of `events` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True when `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        return True
    except TimeoutError:
        return False
