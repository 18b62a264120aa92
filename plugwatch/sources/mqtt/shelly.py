"""Shelly Gen2+ over MQTT: `<prefix>/status/switch:N` (the full status), `<prefix>/events/rpc`
NotifyStatus (partial updates, overlaid on the last full status), `<prefix>/online` true/false.

Status fields: `apower` W, `aenergy.total` Wh, `output` (the relay), `voltage`, `current`; the
metering-only PM devices have component `pm1:N` (no relay). After a (re)connect or `online`, the
plug asks for a full status through the device's RPC channel (`<prefix>/rpc`, answer on
`<src>/rpc`), so it is not left waiting for the next change.
"""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from plugwatch.mqtt.client import MessageCallback, MqttClient
from plugwatch.sources.mqtt.base import BadMessage, MqttPlug, json_object, number

_ids = count(1)
_METHODS = {"switch": "Switch.GetStatus", "pm1": "PM1.GetStatus"}


def overlay(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` laid over it, nested objects merged key by key (a new dict)."""
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        merged[key] = overlay(old, value) if isinstance(old, dict) and isinstance(
            value, dict) else value
    return merged


class ShellyMqttPlug(MqttPlug):
    """One switch (or pm1 meter) of a Shelly Gen2+ device on the broker."""

    family = "shelly"

    def __init__(self, name: str, client: MqttClient, *, prefix: str, channel: int = 0,
                 component: str = "switch", **kwargs: Any) -> None:
        super().__init__(name, client, **kwargs)
        self.prefix, self.channel, self.component = prefix, channel, component
        self.key = f"{component}:{channel}"
        self.where = f"shelly plug {name!r} ({prefix} {self.key})"
        self._status: dict[str, Any] = {}
        self._reply_to = f"{client.client_id}/{name}"

    @classmethod
    def from_config(cls, plug: Any, client: MqttClient, **kwargs: Any) -> ShellyMqttPlug:
        """From a PlugConfig whose options are a config.plugs.ShellyMqttPlug."""
        o = plug.options
        return cls(plug.name, client, prefix=o.prefix, channel=o.channel, component=o.component,
                   interval_s=plug.interval_s, stale_after_s=o.stale_after_s(plug.interval_s),
                   limits=plug.limits, **kwargs)

    def topics(self) -> dict[str, MessageCallback]:
        return {
            f"{self.prefix}/status/{self.key}": self._full,
            f"{self.prefix}/events/rpc": self._event,
            f"{self.prefix}/online": self._online,
            f"{self._reply_to}/rpc": self._reply,
        }

    def request_report(self) -> None:
        if self.client.connected:
            request = {"id": next(_ids), "src": self._reply_to,
                       "method": _METHODS[self.component], "params": {"id": self.channel}}
            self.client.publish(f"{self.prefix}/rpc", json.dumps(request).encode())

    def _full(self, topic: str, payload: bytes, retained: bool) -> None:
        self._apply(json_object(payload), full=True)

    def _reply(self, topic: str, payload: bytes, retained: bool) -> None:
        result = json_object(payload).get("result")
        if isinstance(result, dict):
            self._apply(result, full=True)

    def _event(self, topic: str, payload: bytes, retained: bool) -> None:
        frame = json_object(payload)
        if frame.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
            return  # NotifyEvent (button presses ...): nothing about power
        params = frame.get("params")
        if not isinstance(params, dict):
            raise BadMessage(f"{frame.get('method')} without a params object")
        part = params.get(self.key)
        if part is None:
            return  # another component changed
        if not isinstance(part, dict):
            raise BadMessage(f"params.{self.key} is not an object")
        self._apply(part, full=frame.get("method") == "NotifyFullStatus")

    def _apply(self, status: dict[str, Any], full: bool) -> None:
        merged = status if full else overlay(self._status, status)
        energy = merged.get("aenergy")
        if energy is not None and not isinstance(energy, dict):
            raise BadMessage("aenergy is not an object")
        total_wh = number(energy, "total", "aenergy.total") if energy else None
        relay = merged.get("output")
        if relay is not None and not isinstance(relay, bool):
            raise BadMessage(f"output is {relay!r}, not true/false")
        power = number(merged, "apower", "apower")
        if full and power is None and relay is not False:
            raise BadMessage(f"the {self.key} status has no apower")
        self.report(power_w=power, relay_on=relay,
                    energy_kwh=None if total_wh is None else total_wh / 1000.0,
                    voltage_v=number(merged, "voltage", "voltage"),
                    current_a=number(merged, "current", "current"))
        self._status = merged

    def _online(self, topic: str, payload: bytes, retained: bool) -> None:
        word = payload.strip().lower()
        if word == b"false":
            self._status = {}
            self.offline("the device is offline (its online topic says false)")
        elif word == b"true":
            self.request_report()
        else:
            raise BadMessage(f"online {payload[:20]!r} is neither true nor false")
