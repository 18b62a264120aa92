"""Sources: each plug family turns a plug into readings behind the interface in sources.base.

`DRIVERS` maps the `driver:` names of plugwatch.yaml to "module:Class"; a class is imported only
when a plug of its family is started, so naming a family costs nothing until it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.sources.base import Driver

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
