"""Emulated MQTT plugs: Tasmota, Shelly Gen2 and zigbee2mqtt devices publishing through a broker.

    device = MqttDevice("tasmota", "washer", power=lambda t: 2000 if t < 60 else 1.5, report_s=1)
    await device.start(MqttSettings())     # its own connection: availability online, will offline
    device.relay_on = False                # published at once (stat/washer/POWER, NotifyStatus...)
    device.reset_energy()                  # the counter starts again from 0
    await device.stop()                    # availability offline, clean disconnect
    await device.kill()                    # no goodbye: the broker publishes the will

Each device has its own MQTT connection, so stopping or killing it makes the broker publish its
availability like the real firmware's: Tasmota's LWT `Offline`, Shelly's `<prefix>/online false`,
zigbee2mqtt's `{"state":"offline"}`. Power is W or a callable of emulated seconds (as for the Kasa
emulator); the energy counter integrates it. Every `report_s` real seconds the device publishes its
periodic message; it answers Tasmota's `Status 8` and Shelly's `Switch.GetStatus` RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from plugwatch.emulator.plug import VOLTAGE_V, EmulatedPlug, PowerSource
from plugwatch.mqtt.client import Availability, MqttClient
from plugwatch.mqtt.settings import MqttSettings

FAMILIES = ("tasmota", "shelly", "z2m")


class MqttDevice:
    """One emulated device of `family` ("tasmota", "shelly" or "z2m") named `name`: its Tasmota
    topic, Shelly topic prefix or zigbee2mqtt friendly name."""

    def __init__(
        self, family: str, name: str, *, power: PowerSource = 0.0, speed: float = 1.0,
        report_s: float = 1.0, base_topic: str = "zigbee2mqtt", legacy_availability: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown MQTT family {family!r}: use one of {', '.join(FAMILIES)}")
        self.family, self.name, self.report_s = family, name, report_s
        self.base_topic = base_topic
        self.legacy_availability = legacy_availability
        self._meter = EmulatedPlug("HS110v2", alias=name, power=power, speed=speed, clock=clock)
        self._offset_wh = 0.0
        self.client: MqttClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    # ---- the emulated load ----

    @property
    def power(self) -> PowerSource:
        """W, or a callable of emulated seconds returning W."""
        return self._meter.power

    @power.setter
    def power(self, value: PowerSource) -> None:
        self._meter.power = value

    @property
    def relay_on(self) -> bool:
        """The relay; switching it publishes the new state at once."""
        return self._meter.relay_on

    @relay_on.setter
    def relay_on(self, value: bool) -> None:
        self._meter.relay_on = value
        self._publish_relay()

    def reset_energy(self) -> None:
        """The device's energy counter starts again from zero (Tasmota's EnergyReset, a reboot)."""
        self._offset_wh = self._meter.energy_wh

    def energy_wh(self) -> float:
        """What the device's counter shows now (Wh)."""
        return self._meter.energy_wh - self._offset_wh

    # ---- lifecycle ----

    async def start(self, settings: MqttSettings, timeout_s: float = 5.0) -> None:
        """Connect (availability online), subscribe to its command topics, start reporting."""
        self.client = MqttClient(settings, availability=self._availability(),
                                 client_id=f"emulated-{self.family}-{self.name}"[:64])
        for topic, handler in self._commands().items():
            self.client.subscribe(topic, handler)
        self.client.start()
        if not await self.client.wait_connected(timeout_s):
            raise ConnectionError(f"emulated {self.family} {self.name!r}: no MQTT broker at "
                                  f"{settings.where} ({self.client.last_error})")
        self.publish_report(full=True)
        self._task = asyncio.create_task(self._report_loop())

    async def stop(self) -> None:
        """Availability offline, then a clean disconnect."""
        await self._end()
        if self.client is not None:
            await self.client.close()

    async def kill(self) -> None:
        """Vanish without a goodbye: the broker publishes the device's will."""
        await self._end()
        if self.client is not None:
            await self.client.abort()

    async def _end(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_s)
            self.publish_report()

    # ---- what goes on the wire ----

    def publish_report(self, full: bool = False) -> None:
        """The periodic message (Tasmota SENSOR, Shelly NotifyStatus or full status, z2m state)."""
        if self.family == "tasmota":
            self._send(f"tele/{self.name}/SENSOR", self._tasmota_sensor())
        elif self.family == "shelly":
            if full:
                self._send(f"{self.name}/status/switch:0", self._shelly_status())
            else:
                self._notify({k: v for k, v in self._shelly_status().items()
                              if k in ("id", "apower", "current", "aenergy")})
        else:
            self._send(f"{self.base_topic}/{self.name}", self._z2m_state())

    def _publish_relay(self) -> None:
        if self.client is None or not self.client.connected:
            return
        if self.family == "tasmota":
            self._send(f"stat/{self.name}/POWER", "ON" if self.relay_on else "OFF")
            self._send(f"tele/{self.name}/SENSOR", self._tasmota_sensor())
        elif self.family == "shelly":
            self._notify({"id": 0, "output": self.relay_on, "apower": self._power()})
        else:
            self._send(f"{self.base_topic}/{self.name}", self._z2m_state())

    def _send(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        if self.client is not None and self.client.publish(topic, data):
            self.published += 1

    def _power(self) -> float:
        return round(self._meter.outlets[0].power_w(), 2)

    def _availability(self) -> Availability:
        if self.family == "tasmota":
            return Availability(f"tele/{self.name}/LWT", b"Online", b"Offline")
        if self.family == "shelly":
            return Availability(f"{self.name}/online", b"true", b"false")
        topic = f"{self.base_topic}/{self.name}/availability"
        if self.legacy_availability:
            return Availability(topic)
        return Availability(topic, b'{"state":"online"}', b'{"state":"offline"}')

    def _tasmota_sensor(self) -> dict[str, Any]:
        p = self._power()
        kwh = round(self.energy_wh() / 1000.0, 5)  # EnergyRes 5
        return {"Time": time.strftime("%Y-%m-%dT%H:%M:%S"), "ENERGY": {
            "TotalStartTime": "2024-01-01T00:00:00", "Total": kwh, "Yesterday": 0.0, "Today": kwh,
            "Period": 0, "Power": p, "ApparentPower": p, "ReactivePower": 0, "Factor": 1.0,
            "Voltage": round(VOLTAGE_V), "Current": round(p / VOLTAGE_V, 3)}}

    def _shelly_status(self) -> dict[str, Any]:
        p = self._power()
        return {"id": 0, "source": "init", "output": self.relay_on, "apower": p,
                "voltage": VOLTAGE_V, "freq": 50.0, "current": round(p / VOLTAGE_V, 3),
                "aenergy": {"total": round(self.energy_wh(), 3), "by_minute": [0.0, 0.0, 0.0],
                            "minute_ts": int(time.time())},
                "temperature": {"tC": 41.2, "tF": 106.2}}

    def _notify(self, part: dict[str, Any]) -> None:
        self._send(f"{self.name}/events/rpc", {
            "src": self.name, "dst": f"{self.name}/events", "method": "NotifyStatus",
            "params": {"ts": round(time.time(), 2), "switch:0": part}})

    def _z2m_state(self) -> dict[str, Any]:
        p = self._power()
        return {"power": p, "energy": round(self.energy_wh() / 1000.0, 5),
                "state": "ON" if self.relay_on else "OFF", "voltage": VOLTAGE_V,
                "current": round(p / VOLTAGE_V, 3), "linkquality": 120}

    # ---- commands the device answers ----

    def _commands(self) -> dict[str, Callable[[str, bytes, bool], None]]:
        if self.family == "tasmota":
            return {f"cmnd/{self.name}/Status": self._tasmota_status,
                    f"cmnd/{self.name}/POWER": self._tasmota_power}
        if self.family == "shelly":
            return {f"{self.name}/rpc": self._shelly_rpc}
        return {f"{self.base_topic}/{self.name}/set": self._z2m_set}

    def _tasmota_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip() == b"8":
            self._send(f"stat/{self.name}/STATUS8", {"StatusSNS": self._tasmota_sensor()})

    def _tasmota_power(self, topic: str, payload: bytes, retained: bool) -> None:
        word = payload.strip().upper()
        if word in (b"ON", b"OFF"):
            self.relay_on = word == b"ON"

    def _shelly_rpc(self, topic: str, payload: bytes, retained: bool) -> None:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            frame = json.loads(payload)
            if frame.get("method") == "Switch.GetStatus" and isinstance(frame.get("src"), str):
                self._send(f"{frame['src']}/rpc", {"id": frame.get("id"), "src": self.name,
                                                   "dst": frame["src"],
                                                   "result": self._shelly_status()})
            elif frame.get("method") == "Switch.Set":
                self.relay_on = bool(frame.get("params", {}).get("on"))

    def _z2m_set(self, topic: str, payload: bytes, retained: bool) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            state = json.loads(payload).get("state")
            if isinstance(state, str) and state.upper() in ("ON", "OFF"):
                self.relay_on = state.upper() == "ON"
