"""Tasmota over MQTT: `tele/<topic>/SENSOR` and `stat/<topic>/STATUS8` energy, `tele/<topic>/LWT`
availability, `stat/<topic>/POWER` (and `tele/<topic>/STATE`) relay.

Topics follow the device's FullTopic (default `%prefix%/%topic%/`). With `poll`, the service sends
`cmnd/<topic>/Status 8` at the plug's interval; the answer arrives on STATUS8 (STATUS10 on newer
firmware) as {"StatusSNS": {"ENERGY": {...}}}. ENERGY.Power is W and ENERGY.Total kWh; on a
multi-channel meter they are lists and `channel` picks one.
"""

from __future__ import annotations

from typing import Any

from plugwatch.mqtt.client import MessageCallback, MqttClient
from plugwatch.sources.mqtt.base import BadMessage, MqttPlug, json_object, number


def tasmota_topic(full_topic: str, prefix: str, topic: str) -> str:
    """The topic for one of Tasmota's prefixes (cmnd, stat, tele) without the trailing slash."""
    return full_topic.replace("%prefix%", prefix).replace("%topic%", topic).rstrip("/")


def relay_word(payload: bytes) -> bool:
    """"ON"/"OFF" (also 1/0, true/false) -> bool; BadMessage otherwise."""
    word = payload.strip().upper()
    if word in (b"ON", b"1", b"TRUE"):
        return True
    if word in (b"OFF", b"0", b"FALSE"):
        return False
    raise BadMessage(f"relay state {payload[:20]!r} is neither ON nor OFF")


class TasmotaMqttPlug(MqttPlug):
    """One Tasmota plug (one channel of a multi-relay device) on the broker."""

    family = "tasmota"

    def __init__(self, name: str, client: MqttClient, *, topic: str,
                 full_topic: str = "%prefix%/%topic%/", channel: int = 0, poll: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(name, client, **kwargs)
        self.topic, self.channel, self.polled = topic, channel, poll
        self.where = f"tasmota plug {name!r} ({topic})"
        self._tele = tasmota_topic(full_topic, "tele", topic)
        self._stat = tasmota_topic(full_topic, "stat", topic)
        self._cmnd = tasmota_topic(full_topic, "cmnd", topic)
        self._relay_keys = (f"POWER{channel + 1}",) + (("POWER",) if channel == 0 else ())

    @classmethod
    def from_config(cls, plug: Any, client: MqttClient, **kwargs: Any) -> TasmotaMqttPlug:
        """From a PlugConfig whose options are a config.plugs.TasmotaMqttPlug."""
        o = plug.options
        return cls(plug.name, client, topic=o.topic, full_topic=o.full_topic, channel=o.channel,
                   poll=o.poll, interval_s=plug.interval_s,
                   stale_after_s=o.stale_after_s(plug.interval_s), limits=plug.limits, **kwargs)

    def topics(self) -> dict[str, MessageCallback]:
        handlers: dict[str, MessageCallback] = {
            f"{self._tele}/SENSOR": self._sensor,
            f"{self._tele}/STATE": self._state,
            f"{self._tele}/LWT": self._lwt,
            f"{self._stat}/STATUS8": self._status,
            f"{self._stat}/STATUS10": self._status,
        }
        for key in self._relay_keys:
            handlers[f"{self._stat}/{key}"] = self._power
        return handlers

    def request_report(self) -> None:
        if self.polled and self.client.connected:
            self.client.publish(f"{self._cmnd}/Status", b"8")

    poll = request_report

    def _sensor(self, topic: str, payload: bytes, retained: bool) -> None:
        self._energy(json_object(payload), "")

    def _status(self, topic: str, payload: bytes, retained: bool) -> None:
        sns = json_object(payload).get("StatusSNS")
        if not isinstance(sns, dict):
            raise BadMessage("no StatusSNS object in the Status 8 answer")
        self._energy(sns, "StatusSNS.")

    def _energy(self, data: dict[str, Any], where: str) -> None:
        energy = data.get("ENERGY")
        if energy is None:
            return  # a SENSOR message of another sensor (e.g. a switch input): not ours
        if not isinstance(energy, dict):
            raise BadMessage(f"{where}ENERGY is not an object")
        power = number(energy, "Power", f"{where}ENERGY.Power", self.channel)
        if power is None:
            raise BadMessage(f"{where}ENERGY has no Power")
        self.report(power_w=power,
                    energy_kwh=number(energy, "Total", f"{where}ENERGY.Total", self.channel),
                    voltage_v=number(energy, "Voltage", f"{where}ENERGY.Voltage", self.channel),
                    current_a=number(energy, "Current", f"{where}ENERGY.Current", self.channel))

    def _state(self, topic: str, payload: bytes, retained: bool) -> None:
        data = json_object(payload)
        for key in self._relay_keys:
            if key in data:
                self.report(relay_on=relay_word(str(data[key]).encode()))
                return

    def _power(self, topic: str, payload: bytes, retained: bool) -> None:
        self.report(relay_on=relay_word(payload))

    def _lwt(self, topic: str, payload: bytes, retained: bool) -> None:
        word = payload.strip()
        if word == b"Offline":
            self.offline("the device is Offline (its LWT)")
        elif word == b"Online":
            self.request_report()
        else:
            raise BadMessage(f"LWT {payload[:20]!r} is neither Online nor Offline")
