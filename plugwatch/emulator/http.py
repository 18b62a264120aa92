"""Emulated HTTP plugs: Shelly Gen2/Gen3, Shelly PM Mini, Shelly Gen1 and Tasmota, each answering
its real endpoints with the real JSON shapes (see sources/shelly.py and sources/tasmota.py).

    device = EmulatedHttpDevice("shelly2", power=lambda t: 2000 if t < 60 else 1.5)
    device.fault = "nan"          # or garbage, shape, inf, negative, 401, 500, hung; None: healthy
    device.outlets[0].relay_on = False; device.reset_energy()   # relay off; counter back to 0

`answer(method_path, query, authorization)` returns (HTTP status, headers, body bytes) or None
for "never answer"; emulator/http_server.py serves it over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any

from plugwatch.emulator.plug import VOLTAGE_V, EmulatedOutlet, PowerSource

FAMILIES = ("shelly2", "shelly-pm", "shelly1", "tasmota")
FAULTS = ("garbage", "shape", "nan", "inf", "negative", "401", "500", "hung")
Answer = tuple[int, dict[str, str], bytes]
_serial = count(1)
_JSON = {"Content-Type": "application/json"}


class EmulatedHttpDevice:
    """One emulated device of a `family` with `channels` metered outputs (`.outlets[i]`)."""

    def __init__(
        self, family: str = "shelly2", alias: str | None = None,
        power: PowerSource | Sequence[PowerSource] = 0.0, channels: int = 1, speed: float = 1.0,
        password: str | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")
        self.family = family
        self.speed = speed
        self.password = password
        self.fault: str | None = None
        self._clock = clock
        self._t0 = clock()
        serial = next(_serial)
        self.mac = f"A0B1C2{serial:06X}"
        self.alias = alias or f"emulated {family} {serial}"
        powers = list(power) if isinstance(power, Sequence) else [power] * channels
        if len(powers) != channels:
            raise ValueError(f"{channels} channel(s) but {len(powers)} powers given")
        self.outlets = [EmulatedOutlet(self, p, f"{self.alias} {i}", None)
                        for i, p in enumerate(powers)]
        self._nonce = secrets.token_hex(8)

    def emulated_seconds(self) -> float:
        """Emulated time since the device was made (real seconds times `speed`)."""
        return (self._clock() - self._t0) * self.speed

    def reset_energy(self) -> None:
        """Every channel's energy counter restarts at 0 (Gen1 reboot, Tasmota EnergyTotal 0)."""
        for outlet in self.outlets:
            outlet.reset_energy()

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> Answer | None:
        """The answer to `GET path?query`; None: hang (the `hung` fault)."""
        fault = self.fault
        if fault == "hung":
            return None
        if fault == "garbage":
            return 200, {"Content-Type": "text/plain"}, b"\x8b\x00<html>oops \xff\xfe"
        if fault in ("401", "500"):
            return int(fault), {"Content-Type": "text/plain"}, f"error {fault}".encode()
        if path == "/shelly" and self.family != "tasmota":
            return 200, _JSON, _dumps(self._identity())
        denied = self._denied(path, query, authorization)
        if denied is not None:
            return denied
        handler = {"shelly2": _gen2, "shelly-pm": _gen2, "shelly1": _gen1,
                   "tasmota": _tasmota}[self.family]
        status, body = handler(self, path, query)
        return status, _JSON, _dumps(body)

    def channel_values(self, i: int) -> tuple[float, float, float, bool]:
        """(power W, current A, energy Wh, relay) of channel i, with power faults applied."""
        outlet = self.outlets[i]
        power = outlet.power_w()
        if self.fault == "nan":
            power = float("nan")
        elif self.fault == "inf":
            power = float("inf")
        elif self.fault == "negative":
            power = -50.0
        current = power / VOLTAGE_V if power == power and abs(power) != float("inf") else 0.0
        return power, round(current, 3), outlet.energy_wh, outlet.relay_on

    def _identity(self) -> dict[str, Any]:
        if self.family == "shelly1":
            return {"type": "SHPLG-S", "mac": self.mac, "auth": self.password is not None,
                    "fw": "20230913-114008/v1.14.0-gcb84623", "longid": 1,
                    "num_outputs": len(self.outlets), "num_meters": len(self.outlets)}
        pm = self.family == "shelly-pm"
        app, model = ("MiniPMG3", "S3PM-001PCEU16") if pm else ("PlusPlugS", "SNPL-00112EU")
        device_id = f"{app.lower()}-{self.mac.lower()}"
        return {"name": self.alias, "id": device_id, "mac": self.mac, "slot": 0, "model": model,
                "gen": 3 if pm else 2, "fw_id": "20241011-114455/1.4.4-g6d2a586", "ver": "1.4.4",
                "app": app, "auth_en": self.password is not None,
                "auth_domain": device_id if self.password is not None else None}

    def _denied(self, path: str, query: dict[str, str], authorization: str | None) -> Answer | None:
        """401 with the family's challenge when a password is set and not given right."""
        if self.password is None:
            return None
        if self.family == "tasmota":
            if query.get("user") == "admin" and query.get("password") == self.password:
                return None
            return 401, {"Content-Type": "text/plain"}, b"401: Unauthorized"
        if self.family == "shelly1":
            expected = "Basic " + base64.b64encode(f"admin:{self.password}".encode()).decode()
            if authorization == expected:
                return None
            return 401, {"WWW-Authenticate": 'Basic realm="SHPLG-S"'}, b"401 Unauthorized"
        realm = self._identity()["id"]
        if authorization and _digest_ok(authorization, realm, self.password, self._nonce):
            return None
        challenge = (f'Digest qop="auth", realm="{realm}", nonce="{self._nonce}", '
                     'algorithm=SHA-256')
        body = _dumps({"code": 401, "message": "Unauthorized"})
        return 401, {**_JSON, "WWW-Authenticate": challenge}, body


def _gen2(device: EmulatedHttpDevice, path: str, query: dict[str, str]) -> tuple[int, Any]:
    method = path.removeprefix("/rpc/")
    wanted = "PM1.GetStatus" if device.family == "shelly-pm" else "Switch.GetStatus"
    if method != wanted:
        return 404, {"code": 404, "message": f"No handler for {method}"}
    cid = query.get("id", "0")
    if not cid.isdigit() or int(cid) >= len(device.outlets):
        return 500, {"code": -105, "message": f"Argument 'id', value {cid} not found!"}
    i = int(cid)
    power, current, energy_wh, relay = device.channel_values(i)
    status: dict[str, Any] = {"id": i, "source": "init", "output": relay}
    if device.family == "shelly-pm":
        status = {"id": i}
    status.update({"apower": round(power, 1), "voltage": VOLTAGE_V, "freq": 50.0,
                   "current": current,
                   "aenergy": {"total": round(energy_wh, 3), "by_minute": [0.0, 0.0, 0.0],
                               "minute_ts": int(time.time())}})
    if device.fault == "shape":
        status["apower"] = "lots"
    if device.family != "shelly-pm":
        status["temperature"] = {"tC": 41.3, "tF": 106.4}
    return 200, status


def _gen1(device: EmulatedHttpDevice, path: str, query: dict[str, str]) -> tuple[int, Any]:
    if path != "/status":
        return 404, {"code": 404, "message": "Not found"}
    relays, meters = [], []
    for i in range(len(device.outlets)):
        power, _, energy_wh, relay = device.channel_values(i)
        relays.append({"ison": relay, "has_timer": False, "timer_remaining": 0,
                       "overpower": False, "source": "http"})
        meters.append({"power": round(power, 2), "overpower": 0.0, "is_valid": True,
                       "timestamp": int(time.time()), "counters": [0.0, 0.0, 0.0],
                       "total": int(energy_wh * 60)})  # watt-minutes, as Gen1 counts them
    if device.fault == "shape":
        meters = {"power": 5}  # type: ignore[assignment]
    return 200, {"wifi_sta": {"connected": True, "ip": "127.0.0.1", "rssi": -60},
                 "relays": relays, "meters": meters, "uptime": int(device.emulated_seconds())}


def _tasmota(device: EmulatedHttpDevice, path: str, query: dict[str, str]) -> tuple[int, Any]:
    if path != "/cm":
        return 404, {"WARNING": "File Not Found"}
    command = " ".join(query.get("cmnd", "").split()).lower()
    many = len(device.outlets) > 1
    if command.startswith("power"):
        index = int(command[5:] or 1) if command[5:].isdigit() or not command[5:] else 0
        if not 1 <= index <= len(device.outlets):
            return 200, {"Command": "Unknown"}
        key = f"POWER{index}" if many else "POWER"
        return 200, {key: "ON" if device.outlets[index - 1].relay_on else "OFF"}
    if command != "status 8":
        return 200, {"Command": "Unknown"}
    values = [device.channel_values(i) for i in range(len(device.outlets))]

    def one(k: int, digits: int) -> Any:
        items = [round(v[k], digits) for v in values]
        return items if many else items[0]

    energy = {"TotalStartTime": "2024-01-01T00:00:00",
              "Total": [round(v[2] / 1000, 3) for v in values] if many
              else round(values[0][2] / 1000, 3),
              "Yesterday": 0.0, "Today": 0.0, "Power": one(0, 0), "ApparentPower": one(0, 0),
              "ReactivePower": 0, "Factor": 1.0, "Voltage": round(VOLTAGE_V), "Current": one(1, 3)}
    if device.fault == "shape":
        energy = {"Power": {"now": 5}}
    return 200, {"StatusSNS": {"Time": "2024-01-01T00:00:00", "ENERGY": energy}}


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()  # NaN/Infinity written as such


def _digest_ok(header: str, realm: str, password: str, nonce: str) -> bool:
    """Check an `Authorization: Digest ...` header (SHA-256, qop=auth, user admin)."""
    if not header.startswith("Digest "):
        return False
    fields: dict[str, str] = {}
    for part in header[7:].split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value.strip('"')
    if fields.get("username") != "admin" or fields.get("nonce") != nonce:
        return False

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = h(f"admin:{realm}:{password}")
    ha2 = h(f"GET:{fields.get('uri', '')}")
    expected = h(f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
    return secrets.compare_digest(expected, fields.get("response", ""))
