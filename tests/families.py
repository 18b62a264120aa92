"""One adapter per polled plug family for the contract suite: an emulated device over its real
protocol, the `driver:` config entry that reads it, and the knobs a test turns (relay, counter,
faults, network).

The python-kasa families (tapo, kp125m, kasa-klap) are served by the KLAP emulator, each device
on a loopback address of its own; tapo and kp125m answer from real devices' dumps (python-kasa's
test fixtures, tests/data/python-kasa/)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.http_server import HttpEmulator
from plugwatch.emulator.plug import EmulatedOutlet, PowerSource


@dataclass
class Family:
    """How to emulate and configure one polled family."""

    name: str  # the test id, e.g. "shelly1"
    driver: str  # the `driver:` of plugwatch.yaml
    has_relay: bool = True
    counter_wh: float = 0.001  # resolution of the plug's own energy counter
    faults: bool = True  # supports EmulatedHttpDevice.fault
    options: dict[str, Any] = field(default_factory=dict)
    fixture: str | None = None  # a python-kasa device dump in tests/data/python-kasa/

    async def start(self, power: PowerSource, speed: float = 1.0,
                    password: str | None = None, clock: Callable[[], float] = time.monotonic,
                    ) -> Running:
        """Serve one emulated device on 127.0.0.1 (an OS-chosen port); its emulated time runs
        `speed` times as fast as `clock`."""
        if self.driver == "kasa":
            plug = EmulatedPlug("HS110v2", power=power, speed=speed, clock=clock)
            emulator: Any = Emulator()
            [port] = await emulator.start([plug])
            return Running(self, emulator, plug, plug.outlets[0], port)
        if self.driver in ("tapo", "kasa-klap"):
            return await self._start_klap(power, speed, password, clock)
        device = EmulatedHttpDevice(self.name, power=power, speed=speed, password=password,
                                    clock=clock)
        emulator = HttpEmulator()
        [port] = await emulator.start([device])
        return Running(self, emulator, device, device.outlets[0], port)


    async def _start_klap(self, power: PowerSource, speed: float, password: str | None,
                          clock: Callable[[], float]) -> Running:
        from plugwatch.emulator.klap_server import KlapEmulator
        from plugwatch.emulator.tapo import EmulatedKlapKasa, EmulatedTapo

        secret = password or str(self.options["password"])
        device: Any
        if self.driver == "tapo":
            device = EmulatedTapo(self.description(), power=power, speed=speed, clock=clock,
                                  username=self.options["username"], password=secret)
        else:
            plug = EmulatedPlug("HS110v2", power=power, speed=speed, clock=clock)
            device = EmulatedKlapKasa(plug, username=self.options["username"], password=secret)
        emulator = KlapEmulator()
        [port] = await emulator.start([device])
        return Running(self, emulator, device, device.outlets[0], port, emulator.hosts[0])

    def description(self) -> dict[str, Any]:
        """The device dump this family's emulated device answers from."""
        assert self.fixture is not None
        return json.loads((DATA / self.fixture).read_text())


DATA = Path(__file__).parent / "data" / "python-kasa"


@dataclass
class Running:
    """A started emulated device and what a test may do with it."""

    family: Family
    emulator: Any
    device: Any
    outlet: EmulatedOutlet
    port: int
    host: str = "127.0.0.1"

    @property
    def where(self) -> str:
        """host:port, as the driver names the device in its messages."""
        return f"{self.host}:{self.port}"

    def entry(self, name: str, **extra: Any) -> dict[str, Any]:
        """The `plugs:` entry that reads this device."""
        return {"name": name, "driver": self.family.driver, "host": self.where,
                **self.family.options, **extra}

    def driver(self, timeout: float = 0.5, **extra: Any) -> Any:
        """The family's driver for this device, built from its config entry."""
        from plugwatch.config import config_from_dict
        from plugwatch.sources import make_driver

        config = config_from_dict({"defaults": {"timeout": timeout},
                                   "plugs": [self.entry("p", **extra)]})
        return make_driver(config.plugs[0])

    def set_fault(self, fault: str | None) -> None:
        """Make the device answer badly (see emulator.http.FAULTS), or well again (None)."""
        if self.family.driver == "kasa":
            assert fault in (None, "hung")
            self.device.hung = fault == "hung"
        elif self.family.driver == "kasa-klap":
            assert fault in (None, "hung", "garbage", "500")
            self.device.fault = fault
        else:
            self.device.fault = fault

    async def set_online(self, online: bool) -> None:
        """Take the device off the network (connections refused) or back."""
        await self.emulator.set_online(self.device, online)

    async def stop(self) -> None:
        await self.emulator.stop()


FAMILIES = [
    Family("kasa", "kasa", faults=False),
    Family("shelly2", "shelly"),
    Family("shelly-pm", "shelly", has_relay=False),
    Family("shelly1", "shelly", counter_wh=1 / 60),
    Family("tasmota", "tasmota", counter_wh=1.0),
    # python-kasa's families: counters in whole Wh
    Family("tapo", "tapo", counter_wh=1.0, faults=False, fixture="P110(UK)_1.0_1.3.0.json",
           options={"username": "me@example.com", "password": "tapo-pw"}),
    Family("kp125m", "tapo", counter_wh=1.0, faults=False, fixture="KP125M(US)_1.0_1.2.3.json",
           options={"username": "me@example.com", "password": "tapo-pw"}),
    Family("kasa-klap", "kasa-klap", counter_wh=1.0, faults=False,
           options={"username": "me@example.com", "password": "kasa-pw"}),
]
HTTP_FAMILIES = [f for f in FAMILIES if f.faults]
KLAP_FAMILIES = [f for f in FAMILIES if f.driver in ("tapo", "kasa-klap")]


def ids(families: list[Family]) -> Callable[[Family], str]:
    """pytest ids: the family name."""
    return lambda f: f.name
