"""The service's one MQTT connection (client.py) and its settings (settings.py).

    client = client_for(config.mqtt)   # plugwatch/status as its availability when publishing
"""

from __future__ import annotations

from plugwatch.mqtt.client import Availability, MqttClient, Subscription
from plugwatch.mqtt.settings import MqttSettings, TlsSettings

__all__ = ["Availability", "MqttClient", "MqttSettings", "Subscription", "TlsSettings",
           "client_for"]


def client_for(settings: MqttSettings, client_id: str | None = None) -> MqttClient:
    """The service's client: with the output on, `<prefix>/status` online/offline (the will)."""
    availability = Availability(settings.status_topic) if settings.publish else None
    return MqttClient(settings, availability=availability, client_id=client_id)
