"""Home Assistant MQTT device discovery for one plug: `<ha>/device/<prefix>_<plug>/config`.

One retained message per plug describes a device with four entities: the state (an enum sensor
with the four states), the power (W, measurement), the energy counter (kWh, total_increasing) and
an event entity for runs (`run_started`, `run_finished`). Availability is plugwatch's own status
topic, never the plug's, so Home Assistant shows "unreachable" as a state rather than greying the
device out. An empty retained message on the same topic removes the device again.
"""

from __future__ import annotations

import json
import re
from typing import Any

from plugwatch import __version__
from plugwatch.mqtt.settings import MqttSettings

STATES = ["on", "standby", "off", "unreachable"]
EVENT_TYPES = ["run_started", "run_finished"]
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


def device_id(settings: MqttSettings, plug: str) -> str:
    """The device's id in Home Assistant: `plugwatch_<plug>` with the default prefix."""
    return _NOT_ID.sub("_", f"{settings.prefix}_{plug}")


def discovery_topic(settings: MqttSettings, plug: str) -> str:
    """Where the plug's device discovery message is retained."""
    return f"{settings.homeassistant_prefix}/device/{device_id(settings, plug)}/config"


def state_topic(settings: MqttSettings, plug: str) -> str:
    """The plug's retained state (JSON)."""
    return f"{settings.prefix}/{plug}/state"


def event_topic(settings: MqttSettings, plug: str) -> str:
    """The plug's run events (JSON with `event_type`)."""
    return f"{settings.prefix}/{plug}/event"


def discovery_payload(settings: MqttSettings, plug: str, model: str = "") -> bytes:
    """The device discovery message of one plug (JSON bytes)."""
    ident = device_id(settings, plug)

    def sensor(key: str, name: str, template: str, **extra: Any) -> dict[str, Any]:
        return {"p": "sensor", "name": name, "unique_id": f"{ident}_{key}",
                "value_template": template, **extra}

    message = {
        "dev": {"ids": [ident], "name": plug, "mf": "plugwatch",
                "mdl": model or "smart plug", "sw": __version__},
        "o": {"name": "plugwatch", "sw": __version__},
        "state_topic": state_topic(settings, plug),
        "availability_topic": settings.status_topic,
        "payload_available": "online", "payload_not_available": "offline",
        "qos": 1,
        "cmps": {
            "state": sensor("state", "State", "{{ value_json.state }}",
                            device_class="enum", options=STATES, icon="mdi:power-plug"),
            "power": sensor("power", "Power", "{{ value_json.power_w }}", device_class="power",
                            unit_of_measurement="W", state_class="measurement"),
            "energy": sensor("energy", "Energy", "{{ value_json.energy_kwh }}",
                             device_class="energy", unit_of_measurement="kWh",
                             state_class="total_increasing"),
            "run": {"p": "event", "name": "Run", "unique_id": f"{ident}_run",
                    "state_topic": event_topic(settings, plug), "event_types": EVENT_TYPES},
        },
    }
    return json.dumps(message, separators=(",", ":")).encode()


def plug_of_discovery(settings: MqttSettings, topic: str, payload: bytes) -> str | None:
    """The plug a retained discovery message is about, when this plugwatch (same prefix)
    published it; None for anybody else's device."""
    if not topic.startswith(f"{settings.homeassistant_prefix}/device/") or not payload:
        return None
    try:
        state = json.loads(payload).get("state_topic", "")
    except (ValueError, AttributeError):
        return None
    head, tail = f"{settings.prefix}/", "/state"
    if not isinstance(state, str) or not state.startswith(head) or not state.endswith(tail):
        return None
    plug = state[len(head) : -len(tail)]
    return plug if topic == discovery_topic(settings, plug) else None
