"""ShellyDriver: reads one channel of a Shelly Gen1, Gen2 or Gen3 device over its local HTTP API.

The first contact asks `GET /shelly` (never password-protected) for the generation:
- Gen2/Gen3 (`"gen": 2` or more): `GET /rpc/Switch.GetStatus?id=N` -> `apower` W, `voltage`,
  `current`, `aenergy.total` Wh, `output` (the relay). Metering-only devices (PM Mini) have no
  switch and answer `GET /rpc/PM1.GetStatus?id=N` instead (no relay). Digest auth (SHA-256, user
  `admin`) when the device has a password.
- Gen1 (no `gen`): `GET /status` -> `meters[N].power` W, `meters[N].total` in watt-minutes (it
  restarts at 0 when the device reboots: reported as it is), `relays[N].ison`. Basic auth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from plugwatch.errors import BadAnswer
from plugwatch.model import Reading
from plugwatch.sources.http import HttpDevice, HttpStatus, basic_auth, number

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.config.plugs import ShellyPlug

DEFAULT_PORT = 80
_NOT_FOUND = (404, 500)  # "No handler for Switch.GetStatus" / "Argument 'id', value 1 not found"


class ShellyDriver:
    """A Driver for one channel (switch or meter `channel`, 0-based) of a Shelly device."""

    def __init__(
        self, host: str, port: int = DEFAULT_PORT, channel: int = 0, timeout: float = 2.0,
        username: str = "admin", password: str | None = None,
    ) -> None:
        self.channel = channel
        self.where = f"{host}:{port}" + (f" channel {channel}" if channel else "")
        self.http = HttpDevice(host, port, self.where, timeout)
        self._username = username
        self._password = password
        self.generation: int | None = None  # learnt on first contact
        self.model: str | None = None
        self.alias: str | None = None
        self._path: str | None = None  # the status request, once known

    @classmethod
    def from_config(cls, plug: PlugConfig) -> ShellyDriver:
        """The driver for a configured plug (`driver: shelly`; options: a ShellyPlug)."""
        options = cast("ShellyPlug", plug.options)
        password = options.password.get_secret_value() if options.password else None
        return cls(options.host, options.port or DEFAULT_PORT, options.channel, plug.timeout_s,
                   options.username, password)

    async def read(self, now: float) -> Reading:
        """One Reading stamped `now`; raises DeviceTimeout / DeviceUnreachable / BadAnswer."""
        if self._path is None:
            await self._learn()
            assert self._path is not None
        answer = await self.http.get_json(self._path)
        if self.generation == 1:
            return self._gen1(answer, now)
        return self._gen2(answer, now)

    async def close(self) -> None:
        """Stop using the shared HTTP session."""
        await self.http.close()

    async def identify(self) -> dict[str, Any]:
        """The device's `/shelly` answer (generation, model, auth), remembered for later reads."""
        try:
            info = await self.http.get_json("/shelly")
        except HttpStatus as exc:
            if exc.status != 404:
                raise
            raise BadAnswer(f"{self.where} has no /shelly endpoint: not a Shelly device "
                            "(check the plug's driver)") from None
        if not isinstance(info, dict) or not ("gen" in info or "type" in info):
            raise BadAnswer(f"bad answer from {self.where}: /shelly has neither 'gen' nor "
                            "'type': not a Shelly device?")
        gen = info.get("gen", 1)
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
            raise BadAnswer(f"bad answer from {self.where}: /shelly says gen {gen!r}")
        self.generation = gen
        self.model = str(info.get("model") or info.get("type") or "") or None
        name = info.get("name")
        self.alias = name if isinstance(name, str) and name else None
        if (info.get("auth_en") or info.get("auth")) and self._password is None:
            raise BadAnswer(f"{self.where} is password-protected: set the plug's password in "
                            "plugwatch.yaml (e.g. password: \"${SHELLY_PASSWORD}\")")
        return info

    async def _learn(self) -> None:
        await self.identify()
        if self.generation == 1:
            if self._password is not None:
                self.http.headers = basic_auth(self._username, self._password)
            self._path = "/status"
            return
        if self._password is not None:
            from aiohttp import DigestAuthMiddleware

            self.http.middlewares = (DigestAuthMiddleware("admin", self._password),)
        switch = f"/rpc/Switch.GetStatus?id={self.channel}"
        try:
            await self.http.get_json(switch)
            self._path = switch
        except HttpStatus as exc:
            if exc.status not in _NOT_FOUND:
                raise
            meter = f"/rpc/PM1.GetStatus?id={self.channel}"
            try:
                await self.http.get_json(meter)
            except HttpStatus as exc2:
                if exc2.status not in _NOT_FOUND:
                    raise
                raise BadAnswer(f"{self.where}: the device has neither switch:{self.channel} "
                                f"nor pm1:{self.channel} (check the plug's channel)") from None
            self._path = meter

    def _gen2(self, status: Any, now: float) -> Reading:
        what = "switch status" if "Switch" in (self._path or "") else "pm1 status"
        if not isinstance(status, dict):
            raise BadAnswer(f"bad answer from {self.where}: {what} is not a JSON object")
        power = cast(float, number(status, "apower", self.where, what))
        energy = status.get("aenergy")
        total_wh = number(energy, "total", self.where, f"{what}.aenergy", required=False)
        relay = status.get("output")
        if "output" in status and not isinstance(relay, bool):
            raise BadAnswer(f"bad answer from {self.where}: {what}.output is not true or false")
        return Reading(
            now, power, relay, None if total_wh is None else total_wh / 1000.0,
            number(status, "voltage", self.where, what, required=False),
            number(status, "current", self.where, what, required=False),
        )

    def _gen1(self, status: Any, now: float) -> Reading:
        meters = status.get("meters") if isinstance(status, dict) else None
        if not isinstance(meters, list) or not meters:
            raise BadAnswer(f"bad answer from {self.where}: /status has no meters: not a "
                            "metering Shelly?")
        if self.channel >= len(meters):
            raise BadAnswer(f"{self.where}: the device has {len(meters)} meter(s), no channel "
                            f"{self.channel} (use 0..{len(meters) - 1})")
        meter = meters[self.channel]
        what = f"meters[{self.channel}]"
        power = cast(float, number(meter, "power", self.where, what))
        total_wmin = number(meter, "total", self.where, what, required=False)
        relays = status.get("relays")
        relay: bool | None = None
        if isinstance(relays, list) and self.channel < len(relays):
            ison = relays[self.channel].get("ison") if isinstance(
                relays[self.channel], dict) else None
            if not isinstance(ison, bool):
                raise BadAnswer(f"bad answer from {self.where}: relays[{self.channel}].ison is "
                                "not true or false")
            relay = ison
        energy = None if total_wmin is None else total_wmin / 60_000.0  # W*min -> kWh
        voltage = number(status, "voltage", self.where, "/status", required=False)
        return Reading(now, power, relay, energy, voltage)
