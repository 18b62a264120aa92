"""PyKasaDriver: Tapo P110/P115, Kasa KP125M/EP25 and KLAP-firmware Kasa plugs, through python-kasa
(the optional `[kasa-new]` extra). Legacy Kasa plugs (XOR on TCP 9999) keep the native driver.

First contact finds how to talk to the device: the connection parameters remembered from an
earlier start (sources/memory.py: device family, encryption, login version, HTTPS, port), else
python-kasa's discovery of that one host (UDP 20002), else trying every protocol python-kasa
knows over TCP. The parameters found are remembered, so later starts skip discovery.

Then each read is ONE request through python-kasa's protocol and transport, one at a time per
device (the KLAP session is kept; a new handshake only when the device drops it):
- SMART (Tapo, KP125M, EP25): a multipleRequest of `get_device_info` (the relay) and the realtime
  energy, `get_emeter_data` where the device answers it (power, voltage, current, the month's Wh)
  else `get_energy_usage` (power in mW, the month's Wh). The month's counter restarts on the 1st:
  the detector takes a counter that goes down as a reset.
- Legacy commands over KLAP: sysinfo and `emeter.get_realtime`, as the native driver asks.
No daily or monthly statistics are read. A refused login is one line naming the device, its model
and firmware; the driver then waits AUTH_PAUSE_S before trying again (Tapo firmware locks out an
account after repeated failed logins).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any, cast

from plugwatch.errors import BadAnswer, DeviceError, DeviceTimeout, DeviceUnreachable
from plugwatch.extras import require
from plugwatch.model import Reading
from plugwatch.sources.kasa import protocol as wire

if TYPE_CHECKING:
    from plugwatch.config import PlugConfig
    from plugwatch.config.plugs import TapoPlug
    from plugwatch.sources.memory import DeviceMemory

AUTH_PAUSE_S = 300.0
_SYSINFO: dict[str, Any] = {"system": {"get_sysinfo": {}}}
_IOT_READ: dict[str, Any] = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}


class LoginRefused(BadAnswer):
    """The device refused the configured account (wrong e-mail or password)."""


class PyKasaDriver:
    """A Driver for one plug python-kasa can read (driver: tapo, driver: kasa-klap)."""

    def __init__(
        self, host: str, port: int | None = None, username: str | None = None,
        password: str | None = None, timeout: float = 2.0, name: str | None = None,
    ) -> None:
        self.kasa = require("kasa", "kasa-new", "reading Tapo and KLAP-firmware Kasa plugs")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.name = name or host
        self.where = f"{host}:{port}" if port else host
        self.username = username or ""
        self._password = password or ""
        self.memory: DeviceMemory | None = None  # given by the service (sources/memory.py)
        self.model: str | None = None
        self.firmware: str | None = None
        self.alias: str | None = None
        self.scheme: str | None = None  # e.g. "KLAP login v2", for messages
        self._protocol: Any = None
        self._request: dict[str, Any] = {}
        self._smart = True
        self._energy_method = "get_energy_usage"
        self._refused: tuple[float, str] | None = None
        self._known: dict[str, Any] | None = None  # how to connect, once found (or recalled)

    @classmethod
    def from_config(cls, plug: PlugConfig) -> PyKasaDriver:
        """The driver for a configured plug (`driver: tapo` or `kasa-klap`)."""
        options = cast("TapoPlug", plug.options)
        if options.outlet is not None:
            raise BadAnswer(f"plug {plug.name!r}: outlets of Tapo strips are not read yet "
                            "(remove outlet:)")
        password = options.password.get_secret_value() if options.password else None
        return cls(options.host, options.port, options.username, password, plug.timeout_s,
                   plug.name)

    async def read(self, now: float) -> Reading:
        """One Reading stamped `now`; DeviceTimeout / DeviceUnreachable / BadAnswer otherwise."""
        if self._refused is not None:
            since, message = self._refused
            if time.monotonic() - since < AUTH_PAUSE_S:
                raise LoginRefused(message)
            self._refused = None
        try:
            if self._protocol is None:
                await self._connect()
            async with asyncio.timeout(self.timeout):  # one retry: a session the device dropped
                answer = await self._protocol.query(self._request, retry_count=1)
            return self._reading(answer, now)
        except DeviceError as exc:
            if not isinstance(exc, DeviceTimeout):
                await self._drop()
            raise
        except BaseException as exc:
            error = self._error(exc)
            if error is None:
                raise
            await self._drop()
            raise error from None

    async def close(self) -> None:
        """Close python-kasa's HTTP session for this device."""
        await self._drop()

    async def _drop(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing left to lose
                await protocol.close()

    async def _connect(self) -> None:
        """Find the connection parameters, log in, learn the device; remember what was found."""
        from kasa import DeviceConfig
        from kasa.device_factory import get_protocol
        from kasa.deviceconfig import DeviceConnectionParameters

        known = self._known
        if known is None and self.memory is not None:
            known = await self.memory.recall(self.name)
            if known is not None and known.get("where") != self.where:
                known = None  # the plug moved: what we knew is about another device
        if known is not None:
            connection = DeviceConnectionParameters.from_dict(known["connection"])
            self.model, self.firmware = known.get("model"), known.get("firmware")
        else:
            connection = await self._discover()
        self.scheme = _scheme(connection)
        config = DeviceConfig(host=self.host, port_override=self.port,
                              credentials=self.kasa.Credentials(self.username, self._password),
                              timeout=max(1, math.ceil(self.timeout)), connection_type=connection)
        protocol = get_protocol(config)
        if protocol is None:
            raise BadAnswer(f"{self.where}: python-kasa cannot talk to a {self.scheme} device")
        self._protocol = protocol
        self._smart = connection.device_family.value.startswith("SMART.")
        try:
            async with asyncio.timeout(self.timeout):
                await (self._learn_smart() if self._smart else self._learn_iot())
        except BaseException as exc:
            if known is not None and _not_this_protocol(exc, self.kasa):
                # e.g. a firmware update changed the encryption: discover it again next time
                self._known = None
                if self.memory is not None:
                    self.memory.remember(self.name, None)
            raise
        facts = {"where": self.where, "connection": connection.to_dict(), "model": self.model,
                 "firmware": self.firmware}
        if self.memory is not None and facts != known:
            self.memory.remember(self.name, facts)
        self._known = facts

    async def _discover(self) -> Any:
        """The connection parameters of the device at host: UDP discovery, else every protocol."""
        Discover = self.kasa.Discover
        found: dict[str, Any] = {}

        def raw(info: dict[str, Any]) -> None:
            result = info.get("discovery_response", {})
            found.update(result.get("result", result) if isinstance(result, dict) else {})

        credentials = self.kasa.Credentials(self.username, self._password)
        wait: Any = self.timeout  # python-kasa's type says int; it waits fractions as well
        device = None
        try:
            device = await Discover.discover_single(
                self.host, discovery_timeout=wait, credentials=credentials,
                on_discovered_raw=raw)
        except self.kasa.UnsupportedDeviceError as exc:
            raise BadAnswer(f"{self.where}: python-kasa {_version()} cannot read this device "
                            f"({_first_line(exc)})") from None
        except (TimeoutError, self.kasa.KasaException, OSError):
            device = None
        if device is None:
            async with asyncio.timeout(max(5.0, 2 * self.timeout)):
                device = await Discover.try_connect_all(
                    self.host, port=self.port, credentials=credentials,
                    timeout=max(1, math.ceil(self.timeout)))
            if device is None:
                raise DeviceUnreachable(
                    f"{self.where} answered neither discovery (UDP 20002) nor any protocol "
                    "python-kasa knows: is it a Tapo or Kasa plug, and online?")
        try:
            self.model = str(found.get("device_model") or device.model or "") or None
            self.firmware = found.get("firmware_version") or self.firmware
            return device.config.connection_type
        finally:
            await device.disconnect()

    async def _learn_smart(self) -> None:
        # One multipleRequest: a method the firmware lacks comes back as its error code there,
        # where a request of its own would also end python-kasa's session.
        answer = await self._protocol.query(
            {"component_nego": None, "get_device_info": None, "get_emeter_data": None},
            retry_count=0)
        components = _result(answer, "component_nego", self.where)
        versions = {c.get("id"): c.get("ver_code") for c in components.get("component_list") or []
                    if isinstance(c, dict)}
        self._info(_result(answer, "get_device_info", self.where))
        if "energy_monitoring" not in versions:
            raise BadAnswer(f"{self.where}: the {self.model or 'device'} has no energy meter "
                            "(no energy_monitoring component)")
        emeter = isinstance(answer.get("get_emeter_data"), dict)
        self._energy_method = "get_emeter_data" if emeter else "get_energy_usage"
        self._request = {"get_device_info": None, self._energy_method: None}

    async def _learn_iot(self) -> None:
        sysinfo = self._section(await self._protocol.query(_SYSINFO, retry_count=0),
                                "system", "get_sysinfo")
        self.model = str(sysinfo.get("model") or self.model or "") or None
        self.firmware = str(sysinfo.get("sw_ver") or self.firmware or "") or None
        self.alias = sysinfo.get("alias")
        if sysinfo.get("children"):
            raise BadAnswer(f"{self.where} is a power strip: outlets of KLAP strips are not "
                            "read yet")
        if "ENE" not in str(sysinfo.get("feature", "")).split(":"):
            raise BadAnswer(f"{self.where}: the {self.model or 'plug'} has no energy meter "
                            f"(feature {sysinfo.get('feature', '')!r})")
        self._request = _IOT_READ

    def _info(self, info: dict[str, Any]) -> None:
        import base64
        import binascii

        self.model = str(info.get("model") or self.model or "") or None
        self.firmware = str(info.get("fw_ver") or self.firmware or "") or None
        try:
            self.alias = base64.b64decode(str(info.get("nickname", ""))).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            self.alias = None

    def _reading(self, answer: dict[str, Any], now: float) -> Reading:
        if not self._smart:
            sysinfo = self._section(answer, "system", "get_sysinfo")
            try:
                power, voltage, current, energy = wire.normalise_emeter(
                    self._section(answer, "emeter", "get_realtime"))
            except ValueError as exc:
                raise BadAnswer(f"bad answer from {self.where}: {exc}") from None
            relay = sysinfo.get("relay_state")
            if relay not in (0, 1):
                raise BadAnswer(f"bad answer from {self.where}: sysinfo has no relay state")
            return Reading(now, power, relay == 1, energy, voltage, current)
        info = _result(answer, "get_device_info", self.where)
        relay = info.get("device_on")
        if not isinstance(relay, bool):
            raise BadAnswer(f"bad answer from {self.where}: get_device_info.device_on is not "
                            "true or false")
        meter = _result(answer, self._energy_method, self.where)
        what = self._energy_method
        if what == "get_emeter_data":
            return Reading(
                now, _number(meter, "power_mw", what, self.where) / 1000.0, relay,
                _optional(meter, "energy_wh", what, self.where, 1000.0),
                _optional(meter, "voltage_mv", what, self.where, 1000.0),
                _optional(meter, "current_ma", what, self.where, 1000.0))
        return Reading(now, _number(meter, "current_power", what, self.where) / 1000.0, relay,
                       _optional(meter, "month_energy", what, self.where, 1000.0))

    def _section(self, answer: dict[str, Any], module: str, method: str) -> dict[str, Any]:
        try:
            return wire.section(answer, module, method)
        except ValueError as exc:
            raise BadAnswer(f"bad answer from {self.where}: {exc}") from None

    def _error(self, exc: BaseException) -> DeviceError | None:
        """The one-line DeviceError for an exception out of python-kasa (None: not ours)."""
        kasa = self.kasa
        if isinstance(exc, TimeoutError):
            return DeviceTimeout(f"timeout after {self.timeout:g} s reading {self.where}")
        if isinstance(exc, kasa.AuthenticationError):
            message = (f"{self.where} ({self._device()}) refused the login for "
                       f"{self.username or 'the blank account'!r}: check the plug's username "
                       "(the TP-Link account e-mail) and password; next try in "
                       f"{AUTH_PAUSE_S / 60:g} min")
            self._refused = (time.monotonic(), message)
            return LoginRefused(message)
        if isinstance(exc, kasa.DeviceError) and exc.error_code is not None:
            return BadAnswer(f"bad answer from {self.where}: the device answered "
                             f"{exc.error_code.name} ({exc.error_code.value})")
        if isinstance(exc, kasa.exceptions._ConnectionError | ConnectionError | OSError):
            return DeviceUnreachable(f"cannot reach {self.where}: {_first_line(exc)}")
        if isinstance(exc, kasa.KasaException):
            text = _first_line(exc)
            if "Cannot connect" in text or "Connect call failed" in text:
                return DeviceUnreachable(f"cannot reach {self.where}: {text}")
            return BadAnswer(f"bad answer from {self.where}: {text}")
        if isinstance(exc, ValueError | TypeError | KeyError | AttributeError):
            return BadAnswer(f"bad answer from {self.where}: not a valid answer "
                             f"({type(exc).__name__}: {_first_line(exc)})")
        return None

    def _device(self) -> str:
        parts = [self.model or "model unknown",
                 f"firmware {self.firmware}" if self.firmware else "firmware unknown"]
        return ", ".join([*parts, *([self.scheme] if self.scheme else [])])


def _not_this_protocol(exc: BaseException, kasa: Any) -> bool:
    """Whether a failure with known connection parameters says they are wrong now (not a
    timeout, an outage or a refused login)."""
    if isinstance(exc, DeviceError):
        return isinstance(exc, BadAnswer) and not isinstance(exc, LoginRefused)
    return isinstance(exc, kasa.KasaException) and not isinstance(
        exc, TimeoutError | kasa.AuthenticationError | kasa.exceptions._ConnectionError)


def _result(answer: Any, method: str, where: str) -> dict[str, Any]:
    from kasa.exceptions import SmartErrorCode

    value = answer.get(method) if isinstance(answer, dict) else None
    if isinstance(value, SmartErrorCode):
        raise BadAnswer(f"bad answer from {where}: {method} answered {value.name} ({value.value})")
    if not isinstance(value, dict):
        raise BadAnswer(f"bad answer from {where}: no {method} object in the answer")
    return value


def _number(obj: dict[str, Any], key: str, what: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = "missing" if value is None else repr(value)[:24]
        raise BadAnswer(f"bad answer from {where}: {what}.{key} is {shown}, not a number")
    try:
        return float(value)
    except OverflowError:
        raise BadAnswer(f"bad answer from {where}: {what}.{key} is too large to be true") \
            from None


def _optional(obj: dict[str, Any], key: str, what: str, where: str, per: float) -> float | None:
    return None if obj.get(key) is None else _number(obj, key, what, where) / per


def _scheme(connection: Any) -> str:
    text = connection.encryption_type.value
    if connection.login_version:
        text += f" login v{connection.login_version}"
    return text + (" over HTTPS" if connection.https else "")


def _version() -> str:
    from importlib.metadata import version

    return version("python-kasa")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]
