"""What every MQTT plug shares: the last report, availability, staleness and bad-message lines.

A family (tasmota.py, shelly.py, z2m.py) says which topics it listens to and turns each message
into `report(...)`, `offline(...)` or `BadMessage`; this base turns those into samples for the
service (sources.base.PushSource):

- a report is a Reading stamped when it arrived, checked by sources.validate first;
- silence is "unchanged": `tick` hands the last reading on again (not stored) every interval;
- unreachable, once, when the device's availability says offline (stamped when that arrived),
  after `stale_after` of silence (stamped at the last report) or when the broker goes away (one
  reason for every plug); the next report brings it back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from plugwatch.errors import BadAnswer
from plugwatch.model import ReadFailure, Reading
from plugwatch.mqtt.client import MessageCallback, MqttClient, Subscription
from plugwatch.sources.base import PushSink
from plugwatch.sources.validate import DEFAULT_LIMITS, BadReading, Limits, check_reading

log = logging.getLogger(__name__)

BAD_LOG_EVERY_S = 60.0  # a plug flooding garbage gets one line a minute, with a count


class BadMessage(BadAnswer):
    """A message on a plug's topic that cannot be used (not JSON, wrong shape, not a number)."""


def json_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object; BadMessage saying what it is instead."""
    try:
        data = json.loads(payload.decode())  # str: json skips guessing the encoding of bytes
    except (UnicodeDecodeError, ValueError):
        raise BadMessage(f"not JSON: {_preview(payload)}") from None
    if not isinstance(data, dict):
        raise BadMessage(f"expected a JSON object, got {_preview(payload)}")
    return data


def number(obj: dict[str, Any], key: str, path: str, index: int = 0) -> float | None:
    """obj[key] as a float (None when absent; a list gives its `index`-th value); BadMessage
    naming `path` when it is not a number."""
    value: Any = obj.get(key)
    kind = value.__class__
    if kind is float:  # the common cases first: a message has several numbers
        return float(value)
    if kind is int:
        return float(value)
    if isinstance(value, list):
        if index >= len(value):
            raise BadMessage(f"{path} has {len(value)} values, no channel {index}")
        value = value[index]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadMessage(f"{path} is {_preview(repr(value).encode())}, not a number")
    return float(value)


def _preview(payload: bytes, limit: int = 40) -> str:
    text = payload[:limit].decode("utf-8", "replace")
    return repr(text + ("..." if len(payload) > limit else ""))


class MqttPlug:
    """One plug reporting over the shared MqttClient (a PushSource)."""

    family = "mqtt"

    def __init__(
        self, name: str, client: MqttClient, *, interval_s: float, stale_after_s: float,
        limits: Limits = DEFAULT_LIMITS, clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.client = client
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self.limits = limits
        self.clock = clock
        self.where = f"{self.family} plug {name!r}"
        self.errors = 0  # bad messages so far
        self.last_error = ""
        self._sink: PushSink | None = None
        self._subs: list[Subscription] = []
        self._last: Reading | None = None  # the last report (None: nothing known since a loss)
        self._relay: bool | None = None  # a relay state reported before any power
        self._last_report: float | None = None
        self._last_fed = 0.0
        self._started = 0.0
        self._failed = False  # unreachable was handed on and no report came since
        self._bad_logged = -BAD_LOG_EVERY_S
        self._bad_quiet = 0

    # ---- what a family provides ----

    def topics(self) -> dict[str, MessageCallback]:
        """topic -> handler(topic, payload, retained) of this plug."""
        raise NotImplementedError

    def request_report(self) -> None:
        """Ask the device for a fresh report (after a (re)connect), if it can."""

    def poll(self) -> None:
        """Called at every tick while the plug is reachable (Tasmota asks for Status 8)."""

    # ---- PushSource ----

    def start(self, sink: PushSink) -> None:
        """Subscribe to this plug's topics and hand its samples to `sink`."""
        self._sink = sink
        self._started = self._last_fed = self.clock()
        for topic, handler in self.topics().items():
            self._subs.append(self.client.subscribe(topic, self._guarded(handler)))
        self.client.add_connection_listener(self.request_report, self._broker_down)

    def tick(self, now: float) -> None:
        """Silence is "unchanged": hand the last reading on again, or declare the plug stale."""
        if not self.client.connected:
            return
        if self._failed:
            self.poll()  # a plug that came back answers the poll
            return
        last = self._last_report if self._last_report is not None else self._started
        if now - last > self.stale_after_s:
            self._fail(last, f"{self.where}: no report for {now - last:.0f} s "
                             f"(stale_after {self.stale_after_s:g} s)")
            return
        if self._last is not None and now - self._last_fed >= 0.9 * self.interval_s:
            self._emit(replace(self._last, ts=now), record=False)
        self.poll()

    async def close(self) -> None:
        """Unsubscribe."""
        for sub in self._subs:
            self.client.unsubscribe(sub)
        self._subs.clear()

    # ---- what families call ----

    def report(self, power_w: float | None = None, energy_kwh: float | None = None,
               relay_on: bool | None = None, voltage_v: float | None = None,
               current_a: float | None = None) -> None:
        """New values (None: not in this message) overlaid on the last ones; a Reading once the
        power is known. BadMessage if a value is unphysical."""
        last = self._last
        if relay_on is None:
            relay_on = last.relay_on if last is not None else self._relay
        if power_w is None:
            if last is not None:
                power_w = last.power_w
            elif relay_on is False:
                power_w = 0.0  # an open relay draws nothing
            else:
                self._relay = relay_on  # remembered until the power is known
                return
        if last is not None:
            energy_kwh = last.energy_kwh if energy_kwh is None else energy_kwh
            voltage_v = last.voltage_v if voltage_v is None else voltage_v
            current_a = last.current_a if current_a is None else current_a
        now = self.clock()
        try:
            reading = check_reading(Reading(now, power_w, relay_on, energy_kwh, voltage_v,
                                            current_a), self.where, self.limits)
        except BadReading as exc:
            raise BadMessage(str(exc).split(f"{self.where}: ", 1)[-1]) from None
        self._last = reading
        self._last_report = now
        self._failed = False
        self._emit(reading, record=True)

    def offline(self, why: str) -> None:
        """The device's own availability says it is gone: unreachable now, values forgotten."""
        self._fail(self.clock(), f"{self.where}: {why}")

    # ---- inside ----

    def _guarded(self, handler: MessageCallback) -> MessageCallback:
        def on_message(topic: str, payload: bytes, retained: bool) -> None:
            try:
                handler(topic, payload, retained)
            except BadMessage as exc:
                self._bad(topic, str(exc))

        return on_message

    def _bad(self, topic: str, why: str) -> None:
        self.errors += 1
        self.last_error = f"{self.where}: {why} on {topic}; message ignored"
        now = self.clock()
        if now - self._bad_logged < BAD_LOG_EVERY_S:
            self._bad_quiet += 1
            return
        more = f" ({self._bad_quiet} more since the last line)" if self._bad_quiet else ""
        log.warning("%s%s", self.last_error, more)
        self._bad_logged, self._bad_quiet = now, 0

    def _broker_down(self, reason: str) -> None:
        self._fail(self.clock(), reason)

    def _fail(self, ts: float, reason: str) -> None:
        self._last, self._relay = None, None
        if self._failed:
            return
        self._failed = True
        if self._sink is not None:
            self._sink(self.name, ReadFailure(ts, reason, "unreachable"), False)

    def _emit(self, reading: Reading, record: bool) -> None:
        self._last_fed = reading.ts
        if self._sink is not None:
            self._sink(self.name, reading, record)
