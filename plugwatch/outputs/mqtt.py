"""The MQTT output: every plug's state, power and runs for Home Assistant or any MQTT consumer.

    plugwatch/<plug>/state   retained {"state", "since", "power_w", "energy_kwh", "reason"}
    plugwatch/<plug>/event   {"event_type": "run_started" | "run_finished", ...}
    plugwatch/status         online / offline (the will)
    homeassistant/device/plugwatch_<plug>/config   discovery (outputs/homeassistant.py)

A state change is published at once; power and energy at most once per `publish_interval` per
plug, and only when they changed. Nothing here can delay sampling: publishing only queues bytes on
the client's non-blocking socket, and a round of thousands of plugs goes out 500 messages to an
event-loop turn. While the broker is away, run events wait in a bounded queue;
on every (re)connect the discovery, the latest state of every plug and the waiting events go out.
Discovery is sent again when Home Assistant announces itself (`homeassistant/status` online), and
a device this plugwatch once announced for a plug no longer configured is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from plugwatch.model import Event, Reading, RunSummary, Sample, State, Transition
from plugwatch.mqtt.client import MqttClient, Subscription
from plugwatch.mqtt.settings import MqttSettings
from plugwatch.outputs.homeassistant import (
    discovery_payload,
    discovery_topic,
    event_topic,
    plug_of_discovery,
    state_topic,
)

log = logging.getLogger(__name__)

MAX_QUEUED_EVENTS = 10_000  # run events kept while the broker is away (oldest dropped first)
TURN = 500  # messages published per event-loop turn: 10,000 plugs never hold sampling up long


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class MqttOutput:
    """Publishes what the service sees; its hooks go into Service(listeners, sample_listeners)."""

    def __init__(self, settings: MqttSettings, plugs: Iterable[Any], *,
                 every_plug: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.plugs = {p.name: p for p in plugs}  # the plugs this process publishes
        self.every_plug = set(every_plug) if every_plug is not None else set(self.plugs)
        self.clock = clock
        self.client: MqttClient | None = None
        self.service: Any = None
        self._latest: dict[str, Reading] = {}
        self._reason: dict[str, str] = {}  # the last transition's or failure's reason
        self._dirty: set[str] = set()
        self._sent: dict[str, tuple[Any, ...]] = {}  # what each plug's last state message said
        self._events: deque[tuple[str, bytes]] = deque(maxlen=MAX_QUEUED_EVENTS)
        self._task: asyncio.Task[None] | None = None
        self._republish: asyncio.Task[None] | None = None
        self._discovery_sub: Subscription | None = None
        self.published = 0

    # ---- service hooks (on the event loop; never block) ----

    def on_sample(self, plug: str, sample: Sample) -> None:
        """Keep the latest reading (published at the next interval) or failure reason."""
        if isinstance(sample, Reading):
            self._latest[plug] = sample
        else:
            self._reason[plug] = sample.reason
        self._dirty.add(plug)

    def on_event(self, event: Event) -> None:
        """A transition is published at once; a run start and end become events."""
        plug = event.plug
        if plug not in self.plugs:
            return
        if isinstance(event, Transition):
            if event.to_state is not State.UNREACHABLE or plug not in self._reason:
                self._reason[plug] = event.reason
            if event.to_state is State.ON:
                self._event(plug, {"event_type": "run_started", "plug": plug,
                                   "start": iso(event.ts), "power_w": _round(event.power_w)})
            self._publish_state(plug, force=True)
        elif isinstance(event, RunSummary):
            self._event(plug, run_finished(event))

    # ---- lifecycle ----

    async def start(self, service: Any) -> None:
        """Publish through `service.mqtt` (the service's one client) until stop()."""
        self.service = service
        self.client = client = service.mqtt
        if client is None:
            raise RuntimeError("the MQTT output needs the service's MQTT client")
        if self.settings.homeassistant:
            client.subscribe(f"{self.settings.homeassistant_prefix}/status", self._ha_status)
        client.add_connection_listener(self._connected)
        if client.connected:
            self._connected()
        self._task = asyncio.create_task(self._every_interval(), name="mqtt-output")

    async def stop(self) -> None:
        """Stop publishing (the client's owner closes it: `offline` goes out then)."""
        for task in (self._task, self._republish):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ---- publishing ----

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.settings.publish_interval_s)
            await self.publish_changed()

    async def publish_changed(self) -> int:
        """Publish the state message of every plug whose message would differ; how many."""
        dirty, self._dirty = self._dirty, set()
        if self.service is not None:  # a first reading decides a state silently: catch it
            dirty.update(p for p in self.plugs if self._state_of(p)[0] is not None
                         and p not in self._sent)
        return await in_turns([p for p in dirty if p in self.plugs], self._publish_state)

    def state_message(self, plug: str) -> dict[str, Any] | None:
        """The plug's state message now (None while its state is not decided yet)."""
        state, since = self._state_of(plug)
        if state is None:
            return None
        reading = self._latest.get(plug)
        return {"state": state, "since": iso(since),
                "power_w": None if reading is None or state == "unreachable" else _round(
                    reading.power_w),
                "energy_kwh": None if reading is None else reading.energy_kwh,
                "reason": self._reason.get(plug)}

    def _state_of(self, plug: str) -> tuple[str | None, float | None]:
        detector = self.service.detectors.get(plug) if self.service is not None else None
        if detector is None or detector.state is State.UNKNOWN:
            return None, None
        return str(detector.state), detector.since

    def _publish_state(self, plug: str, force: bool = False) -> bool:
        client = self.client
        message = self.state_message(plug)
        if client is None or message is None or not client.connected:
            return False
        key = tuple(message.values())
        if not force and self._sent.get(plug) == key:
            return False
        if client.publish(state_topic(self.settings, plug), _dumps(message), retain=True):
            self._sent[plug] = key
            self.published += 1
            return True
        return False

    def _event(self, plug: str, message: dict[str, Any]) -> None:
        self._events.append((event_topic(self.settings, plug), _dumps(message)))
        self._flush_events()

    def _flush_events(self) -> None:
        client = self.client
        while self._events and client is not None and client.connected:
            topic, payload = self._events[0]
            if not client.publish(topic, payload, qos=1):
                return
            self._events.popleft()
            self.published += 1

    def _connected(self) -> None:
        """After every (re)connect: discovery, every plug's latest state, the waiting events."""
        if self._republish is not None:
            self._republish.cancel()
        self._republish = asyncio.get_running_loop().create_task(self._publish_everything())

    async def _publish_everything(self) -> None:
        if self.settings.homeassistant:
            self._look_for_removed()
            await in_turns(list(self.plugs), self._publish_discovery)
        self._sent.clear()
        await in_turns(list(self.plugs), lambda plug: self._publish_state(plug, force=True))
        self._flush_events()

    def _publish_discovery(self, name: str) -> bool:
        """The Home Assistant discovery message of one plug of this process."""
        plug = self.plugs[name]
        model = f"{plug.driver} plug at {plug.address}"
        return self.client is not None and self.client.publish(
            discovery_topic(self.settings, name), discovery_payload(self.settings, name, model),
            retain=True)

    def _ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip() == b"online" and not retained:
            log.info("Home Assistant is online: publishing discovery again")
            self._connected()

    def _look_for_removed(self) -> None:
        """Read the retained discovery messages once (the broker sends them before anything
        published later, which arrives not retained: then the subscription ends)."""
        assert self.client is not None
        if self._discovery_sub is None:
            self._discovery_sub = self.client.subscribe(
                f"{self.settings.homeassistant_prefix}/device/+/config", self._retained_discovery)

    def _retained_discovery(self, topic: str, payload: bytes, retained: bool) -> None:
        """A device we announced once for a plug no longer configured: remove it, and its state."""
        if not retained:  # the retained ones are through: stop listening
            if self._discovery_sub is not None and self.client is not None:
                self.client.unsubscribe(self._discovery_sub)
                self._discovery_sub = None
            return
        plug = plug_of_discovery(self.settings, topic, payload)
        if plug is None or plug in self.every_plug or self.client is None:
            return
        log.info("plug %r is no longer configured: removing its Home Assistant device", plug)
        self.client.publish(topic, b"", retain=True)
        self.client.publish(state_topic(self.settings, plug), b"", retain=True)


async def in_turns(items: list[str], publish: Callable[[str], bool]) -> int:
    """`publish` each item, TURN to an event-loop turn; how many were published."""
    done = 0
    for i, item in enumerate(items):
        done += publish(item)
        if i % TURN == TURN - 1:
            await asyncio.sleep(0)
    return done


def run_finished(run: RunSummary) -> dict[str, Any]:
    """The `run_finished` event of one run."""
    message: dict[str, Any] = {
        "event_type": "run_finished", "plug": run.plug, "start": iso(run.start),
        "end": iso(run.end), "duration_s": round(run.duration_s, 1),
        "energy_kwh": round(run.energy_wh / 1000.0, 6), "peak_w": _round(run.peak_w)}
    if run.cost is not None:
        message.update(cost=round(run.cost, 4), currency=run.currency)
    return message


def _round(watts: float | None) -> float | None:
    return None if watts is None else round(watts, 2)


def _dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()

