"""Sources: each plug family turns a plug into readings behind the interface in sources.base.

`DRIVERS` maps the `driver:` names of polled families to "module:Class", `PUSHED` those of the
families that report over MQTT; a class is imported only when a plug of its family is started, so
naming a family costs nothing until it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.mqtt.client import MqttClient
    from plugwatch.sources.base import Driver, PushSource

DRIVERS = {
    "kasa": "plugwatch.sources.kasa.driver:KasaDriver",
    "shelly": "plugwatch.sources.shelly:ShellyDriver",
    "tasmota": "plugwatch.sources.tasmota:TasmotaDriver",
    "tapo": "plugwatch.sources.pykasa:PyKasaDriver",  # the [kasa-new] extra
    "kasa-klap": "plugwatch.sources.pykasa:PyKasaDriver",
}


def make_driver(plug: PlugConfig) -> Driver:
    """The driver for one configured plug, built by its class's `from_config`."""
    if plug.driver not in DRIVERS:
        from plugwatch.errors import ConfigError

        raise ConfigError(f"plug {plug.name!r}: this plugwatch cannot poll driver "
                          f"{plug.driver!r} yet (polled drivers: {', '.join(sorted(DRIVERS))})")
    module, name = DRIVERS[plug.driver].split(":")
    driver: Driver = getattr(importlib.import_module(module), name).from_config(plug)
    return driver


PUSHED = {
    "tasmota-mqtt": "plugwatch.sources.mqtt.tasmota:TasmotaMqttPlug",
    "shelly-mqtt": "plugwatch.sources.mqtt.shelly:ShellyMqttPlug",
    "zigbee2mqtt": "plugwatch.sources.mqtt.z2m:Zigbee2MqttPlug",
}


def make_pushed(plug: PlugConfig, client: MqttClient) -> PushSource:
    """The push source of one configured MQTT plug on the service's MQTT client."""
    module, name = PUSHED[plug.driver].split(":")
    source: PushSource = getattr(importlib.import_module(module), name).from_config(plug, client)
    return source
