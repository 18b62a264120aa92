"""TasmotaDriver: reads a Tasmota plug over HTTP, `GET /cm?cmnd=Status%208`.

The answer's `StatusSNS.ENERGY` has `Power` (W), `Total` (kWh), `Voltage` and `Current`; a
multi-channel meter gives lists, indexed by the plug's `channel`. Status 8 does not say whether
the relay is closed, and a second request per read would double the cost: a reading above 0 W
means the relay is closed, and only a 0 W reading asks `Power<N>` (`{"POWER1": "OFF"}`).
A password is sent as the `user`/`password` query arguments Tasmota expects (never logged);
a wrong one is answered with HTTP 401, or with HTTP 200 and a `WARNING` by older firmware.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from plugwatch.errors import BadAnswer
from plugwatch.model import Reading
from plugwatch.sources.http import HttpDevice, number

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.config.plugs import TasmotaPlug

DEFAULT_PORT = 80


class TasmotaDriver:
    """A Driver for one relay/meter channel (0-based: 0 is POWER1) of a Tasmota device."""

    def __init__(
        self, host: str, port: int = DEFAULT_PORT, channel: int = 0, timeout: float = 2.0,
        username: str = "admin", password: str | None = None,
    ) -> None:
        self.channel = channel
        self.where = f"{host}:{port}" + (f" channel {channel}" if channel else "")
        self.http = HttpDevice(host, port, self.where, timeout)
        auth = {"user": username, "password": password} if password is not None else {}
        self._status_path = "/cm?" + urlencode({**auth, "cmnd": "Status 8"}).replace("+", "%20")
        self._relay_key = f"POWER{channel + 1}"
        self._relay_path = "/cm?" + urlencode({**auth, "cmnd": self._relay_key})
        self.model: str | None = None
        self.alias: str | None = None

    @classmethod
    def from_config(cls, plug: PlugConfig) -> TasmotaDriver:
        """The driver for a configured plug (`driver: tasmota`; options: a TasmotaPlug)."""
        options = cast("TasmotaPlug", plug.options)
        password = options.password.get_secret_value() if options.password else None
        return cls(options.host, options.port or DEFAULT_PORT, options.channel, plug.timeout_s,
                   options.username, password)

    async def read(self, now: float) -> Reading:
        """One Reading stamped `now`; raises DeviceTimeout / DeviceUnreachable / BadAnswer."""
        energy = self._energy(await self.command(self._status_path))
        power = cast(float, self._pick(energy, "Power", required=True))
        total = self._pick(energy, "Total", required=False, per_channel=True)
        voltage = self._pick(energy, "Voltage", required=False)
        current = self._pick(energy, "Current", required=False)
        own_meter = self.channel == 0 or isinstance(energy.get("Power"), list)
        relay = True if power > 0 and own_meter else await self.relay_on()
        return Reading(now, power, relay, total, voltage, current)

    async def close(self) -> None:
        """Stop using the shared HTTP session."""
        await self.http.close()

    async def relay_on(self) -> bool:
        """Whether the channel's relay is closed (`Power<N>`)."""
        answer = await self.command(self._relay_path)
        value = answer.get(self._relay_key, answer.get("POWER") if self.channel == 0 else None)
        if value in ("ON", 1):
            return True
        if value in ("OFF", 0):
            return False
        if value is None:
            raise BadAnswer(f"bad answer from {self.where}: no relay {self._relay_key} (check "
                            "the plug's channel)")
        raise BadAnswer(f"bad answer from {self.where}: {self._relay_key} is {value!r}, not "
                        "ON or OFF (custom StateText?)")

    async def command(self, path: str) -> dict[str, Any]:
        """The JSON object answering one `/cm` command; BadAnswer for a refusal or a non-object."""
        answer = await self.http.get_json(path)
        if not isinstance(answer, dict):
            raise BadAnswer(f"bad answer from {self.where}: not a JSON object")
        warning = answer.get("WARNING")
        if isinstance(warning, str) and "password" in warning.lower():
            raise BadAnswer(f"{self.where} refused the credentials (Tasmota: {warning}): set the "
                            "plug's password in plugwatch.yaml")
        return answer

    def _energy(self, answer: dict[str, Any]) -> dict[str, Any]:
        sns = answer.get("StatusSNS")
        if not isinstance(sns, dict):
            raise BadAnswer(f"bad answer from {self.where}: no StatusSNS object (not Tasmota?)")
        energy = sns.get("ENERGY")
        if not isinstance(energy, dict):
            raise BadAnswer(f"bad answer from {self.where}: StatusSNS has no ENERGY: the device "
                            "has no energy meter")
        return energy

    def _pick(
        self, energy: dict[str, Any], key: str, required: bool, per_channel: bool = False,
    ) -> float | None:
        """ENERGY[key] for this channel: the list item, or the one value of a 1-channel meter."""
        value = energy.get(key)
        if isinstance(value, list):
            if self.channel >= len(value):
                raise BadAnswer(f"{self.where}: ENERGY.{key} has {len(value)} channel(s), no "
                                f"channel {self.channel} (use 0..{len(value) - 1})")
            return number({key: value[self.channel]}, key, self.where, "ENERGY", required)
        if per_channel and self.channel > 0 and isinstance(energy.get("Power"), list):
            return None  # one total for several channels: not this channel's energy
        return number(energy, key, self.where, "ENERGY", required)
