"""MQTT test helpers: the machine's Mosquitto, a private one for outage tests
(plugwatch.testing.mosquitto), a recording client.

Every test uses topics of its own (uuid names and prefixes), so helpers' tests sharing the broker
never see each other, and clears the retained messages it leaves behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugwatch.mqtt.client import MqttClient
from plugwatch.mqtt.settings import MqttSettings
from plugwatch.testing.mosquitto import PrivateBroker, mosquitto_binary
from tests.conftest import require_service


def unique(name: str) -> str:
    """A name (topic part, plug name) no other test uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def broker_settings() -> MqttSettings:
    """Settings for the machine's Mosquitto on 127.0.0.1:1883 with prefixes of their own."""
    return MqttSettings(host="127.0.0.1", port=1883, prefix=unique("pw"),
                        homeassistant_prefix=unique("ha"), publish_interval_s=0.2)


@pytest.fixture
async def broker() -> AsyncIterator[MqttSettings]:
    """broker_settings() (skips/fails when Mosquitto is not listening); afterwards, whatever
    passed or failed, the retained messages under its two prefixes are cleared."""
    require_service("Mosquitto", "127.0.0.1", 1883)
    settings = broker_settings()
    yield settings
    await clear_retained(settings, f"{settings.prefix}/#", f"{settings.homeassistant_prefix}/#")


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A started private mosquitto (skips/fails when the binary is missing)."""
    if mosquitto_binary() is None:
        reason = "the mosquitto binary is not installed (apt-get install mosquitto)"
        if os.environ.get("PLUGWATCH_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    b = PrivateBroker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Recorder:
    """A test client recording every message on some topic filters (a stand-in consumer)."""

    def __init__(self, settings: MqttSettings, *filters: str) -> None:
        self.client = MqttClient(settings, client_id=unique("recorder"))
        self.messages: list[tuple[str, bytes, bool]] = []
        for f in filters:
            self.client.subscribe(f, lambda t, p, r: self.messages.append((t, p, r)))

    def on(self, topic: str) -> list[bytes]:
        """Payloads seen on `topic`, oldest first."""
        return [p for t, p, _ in self.messages if t == topic]

    def retained_topics(self) -> set[str]:
        return {t for t, p, _ in self.messages if p}


@contextlib.asynccontextmanager
async def recording(settings: MqttSettings, *filters: str) -> AsyncIterator[Recorder]:
    """A connected Recorder for the body of the block."""
    rec = Recorder(settings, *filters)
    probe, back = unique("probe"), asyncio.Event()  # a topic of its own, outside `filters`
    rec.client.subscribe(probe, lambda t, p, r: back.set())
    rec.client.start()
    assert await rec.client.wait_connected(15), rec.client.last_error
    # Sent after the SUBSCRIBE on the same connection: once it is back, the broker has applied
    # every subscription (a fixed sleep misses the first messages on a loaded machine).
    rec.client.publish(probe, b"probe")
    await asyncio.wait_for(back.wait(), 15)
    try:
        yield rec
    finally:
        await rec.client.close()


async def clear_retained(settings: MqttSettings, *filters: str) -> None:
    """Publish an empty retained message on every retained topic under `filters`."""
    seen: set[str] = set()
    client = MqttClient(settings, client_id=unique("cleaner"))
    for f in filters:
        client.subscribe(f, lambda t, p, r: seen.add(t) if r and p else None)
    client.start()
    if not await client.wait_connected(5):
        return
    await asyncio.sleep(0.3)
    for topic in seen:
        client.publish(topic, b"", retain=True, qos=1)
    await asyncio.sleep(0.1)
    await client.close()


async def publish(settings: MqttSettings, topic: str, payload: bytes | str,
                  retain: bool = False) -> None:
    """One message from a client of its own."""
    client = MqttClient(settings, client_id=unique("pub"))
    client.start()
    assert await client.wait_connected(5)
    client.publish(topic, payload, retain=retain, qos=1)
    await asyncio.sleep(0.05)
    await client.close()


def mqtt_config(settings: MqttSettings, database: str, plugs: list[dict[str, Any]],
                **overrides: Any) -> Any:
    """A Config for MQTT plugs on `settings`' broker (prefixes from the settings)."""
    from plugwatch.config import config_from_dict

    data: dict[str, Any] = {
        "database": database,
        "mqtt": {"url": f"mqtt://{settings.where}", "prefix": settings.prefix,
                 "publish_interval": settings.publish_interval_s,
                 "homeassistant": {"prefix": settings.homeassistant_prefix}},
        "plugs": plugs,
    }
    data.update(overrides.pop("data", {}))
    return config_from_dict(data, **overrides)
