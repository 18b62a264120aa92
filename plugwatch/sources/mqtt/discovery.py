"""`plugwatch discover --mqtt URL`: the MQTT plugs a broker knows, from its retained topics.

    found = await discover_mqtt(settings, wait_s=2.0)   # [FoundPlug(family, ident, online, ...)]

Tasmota devices leave their LWT retained (`tele/<topic>/LWT`), Shelly Gen2+ devices their
`<prefix>/online` (and possibly `<prefix>/status/switch:N`), and zigbee2mqtt its device list
(`<base>/bridge/devices`, retained): the devices there that measure power are plugs.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from plugwatch.mqtt.client import MqttClient
from plugwatch.mqtt.settings import MqttSettings

_SHELLY_STATUS = re.compile(r"^(?P<prefix>.+)/status/(?P<component>switch|pm1):(?P<n>\d+)$")


@dataclass(frozen=True)
class FoundPlug:
    """One plug found on the broker, with the `plugs:` entry that watches it."""

    family: str  # the driver: tasmota-mqtt, shelly-mqtt, zigbee2mqtt
    ident: str  # the Tasmota topic, the Shelly prefix, the zigbee2mqtt friendly name
    online: bool | None
    entry: dict[str, Any]
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        """The `discover --mqtt --json` object."""
        return {"driver": self.family, "id": self.ident, "online": self.online,
                "model": self.model or None, "entry": self.entry}

    def describe(self) -> str:
        """One line: family, id, online, model, the entry to paste."""
        state = {True: "online", False: "offline", None: "-"}[self.online]
        pairs = ", ".join(f"{k}: {json.dumps(v)}" for k, v in self.entry.items())
        model = f" {self.model}" if self.model else ""
        return f"{self.family:<13} {self.ident:<30} {state:<7}{model}  - {{{pairs}}}"


def _name(ident: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", ident).strip("_.-") or "plug"


class _Collector:
    def __init__(self) -> None:
        self.tasmota: dict[str, bool | None] = {}
        self.shelly: dict[str, bool | None] = {}
        self.shelly_parts: dict[str, set[tuple[str, int]]] = {}
        self.z2m: dict[tuple[str, str], str] = {}  # (base, friendly name) -> model
        self.z2m_online: dict[tuple[str, str], bool] = {}

    def on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        parts = topic.split("/")
        text = payload.strip()
        if len(parts) == 3 and parts[0] == "tele" and parts[2] == "LWT":
            self.tasmota[parts[1]] = {b"Online": True, b"Offline": False}.get(text)
        elif parts[-1] == "online" and text in (b"true", b"false") and len(parts) >= 2:
            self.shelly["/".join(parts[:-1])] = text == b"true"
        elif (m := _SHELLY_STATUS.match(topic)) is not None:
            self.shelly_parts.setdefault(m["prefix"], set()).add((m["component"], int(m["n"])))
            self.shelly.setdefault(m["prefix"], None)
        elif len(parts) == 3 and parts[1:] == ["bridge", "devices"]:
            self._z2m_devices(parts[0], payload)

    def _z2m_devices(self, base: str, payload: bytes) -> None:
        try:
            devices = json.loads(payload)
        except ValueError:
            return
        for device in devices if isinstance(devices, list) else []:
            if isinstance(device, dict) and _measures_power(device.get("definition")):
                definition = device["definition"]
                model = f"{definition.get('vendor', '')} {definition.get('model', '')}".strip()
                self.z2m[(base, str(device.get("friendly_name")))] = model

    def found(self) -> list[FoundPlug]:
        plugs = [FoundPlug("tasmota-mqtt", t, online,
                           {"name": _name(t), "driver": "tasmota-mqtt", "topic": t})
                 for t, online in sorted(self.tasmota.items())]
        for prefix, online in sorted(self.shelly.items()):
            for component, n in sorted(self.shelly_parts.get(prefix, {("switch", 0)})):
                entry: dict[str, Any] = {"name": _name(prefix if n == 0 else f"{prefix}-{n}"),
                                         "driver": "shelly-mqtt", "prefix": prefix}
                if n:
                    entry["channel"] = n
                if component != "switch":
                    entry["component"] = component
                plugs.append(FoundPlug("shelly-mqtt", prefix, online, entry))
        for (base, name), model in sorted(self.z2m.items()):
            entry = {"name": _name(name), "driver": "zigbee2mqtt", "device": name}
            if base != "zigbee2mqtt":
                entry["base_topic"] = base
            plugs.append(FoundPlug("zigbee2mqtt", name, None, entry, model))
        return plugs


def _measures_power(definition: Any) -> bool:
    """Whether a zigbee2mqtt device definition exposes a `power` value (at any depth)."""
    if not isinstance(definition, dict):
        return False
    stack = list(definition.get("exposes") or [])
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("property") == "power" or item.get("name") == "power":
                return True
            stack.extend(item.get("features") or [])
    return False


async def discover_mqtt(settings: MqttSettings, wait_s: float = 2.0) -> list[FoundPlug]:
    """The MQTT plugs in the broker's retained messages; ConnectionError when it cannot connect."""
    collector = _Collector()
    client = MqttClient(settings, client_id=None)
    for topic in ("tele/+/LWT", "+/online", "+/+/online", "+/status/+", "+/bridge/devices"):
        client.subscribe(topic, collector.on_message)
    client.start()
    try:
        if not await client.wait_connected(min(10.0, max(wait_s, 3.0))):
            raise ConnectionError(client.last_error or "no answer")
        await asyncio.sleep(wait_s)
    finally:
        await client.close()
    return collector.found()
