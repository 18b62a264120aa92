"""zigbee2mqtt: `<base>/<friendly_name>` JSON (`power` W, `energy` kWh, `state` ON/OFF, `voltage`,
`current`), `<base>/<friendly_name>/availability` ({"state":"online"} or the legacy plain
`online`/`offline`) and the bridge's own `<base>/bridge/state` (all its devices are gone when the
bridge is offline). The base topic defaults to `zigbee2mqtt`.
"""

from __future__ import annotations

from typing import Any

from plugwatch.mqtt.client import MessageCallback, MqttClient
from plugwatch.sources.mqtt.base import BadMessage, MqttPlug, json_object, number


def availability_word(payload: bytes) -> str:
    """"online" or "offline" from either payload style; BadMessage otherwise."""
    text = payload.strip()
    if text.startswith(b"{"):
        state = json_object(payload).get("state")
        word = state.lower() if isinstance(state, str) else ""
    else:
        word = text.decode("utf-8", "replace").lower()
    if word not in ("online", "offline"):
        raise BadMessage(f"availability {payload[:40]!r} is neither online nor offline")
    return word


class Zigbee2MqttPlug(MqttPlug):
    """One zigbee plug behind zigbee2mqtt."""

    family = "zigbee2mqtt"

    def __init__(self, name: str, client: MqttClient, *, device: str,
                 base_topic: str = "zigbee2mqtt", **kwargs: Any) -> None:
        super().__init__(name, client, **kwargs)
        self.device, self.base_topic = device, base_topic
        self.where = f"zigbee2mqtt plug {name!r} ({device})"

    @classmethod
    def from_config(cls, plug: Any, client: MqttClient, **kwargs: Any) -> Zigbee2MqttPlug:
        """From a PlugConfig whose options are a config.plugs.Zigbee2MqttPlug."""
        o = plug.options
        return cls(plug.name, client, device=o.device, base_topic=o.base_topic,
                   interval_s=plug.interval_s, stale_after_s=o.stale_after_s(plug.interval_s),
                   limits=plug.limits, **kwargs)

    def topics(self) -> dict[str, MessageCallback]:
        device = f"{self.base_topic}/{self.device}"
        return {
            device: self._state,
            f"{device}/availability": self._availability,
            f"{self.base_topic}/bridge/state": self._bridge,
        }

    def _state(self, topic: str, payload: bytes, retained: bool) -> None:
        data = json_object(payload)
        state = data.get("state")
        relay = None
        if state is not None:
            if not isinstance(state, str) or state.upper() not in ("ON", "OFF"):
                raise BadMessage(f"state {state!r} is neither ON nor OFF")
            relay = state.upper() == "ON"
        self.report(power_w=number(data, "power", "power"), relay_on=relay,
                    energy_kwh=number(data, "energy", "energy"),
                    voltage_v=number(data, "voltage", "voltage"),
                    current_a=number(data, "current", "current"))

    def _availability(self, topic: str, payload: bytes, retained: bool) -> None:
        if availability_word(payload) == "offline":
            self.offline("zigbee2mqtt marks the device offline")

    def _bridge(self, topic: str, payload: bytes, retained: bool) -> None:
        if availability_word(payload) == "offline":
            self.offline("the zigbee2mqtt bridge is offline")
