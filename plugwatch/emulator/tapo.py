"""Emulated plugs behind KLAP: a Tapo / new-Kasa plug speaking the SMART protocol, and a Kasa plug
on KLAP firmware that still speaks the legacy commands (emulator/klap_server.py serves both).

    tapo = EmulatedTapo(power=60.0, password="pw")                 # a P110, our own description
    tapo = EmulatedTapo(description=json.load(fixture_file))       # a real device's dump
    kasa = EmulatedKlapKasa(EmulatedPlug("HS110v2", power=60.0))   # legacy commands over KLAP

A SMART request is `{"method": ..., "params": ...}` (or `multipleRequest` with a list of them);
its answer `{"error_code": 0, "result": ...}`. The description is a device's dump (a dict from
method name to its result, as python-kasa's test fixtures are); the power, relay, alias and energy
fields of the answers are the emulated outlet's. A method the description lacks is answered with
error -1002 (unknown method), as real firmware does.
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import count
from typing import Any

from plugwatch.emulator.klap import KlapAccount
from plugwatch.emulator.plug import VOLTAGE_V, EmulatedOutlet, EmulatedPlug, PowerSource

UNKNOWN_METHOD = -1002
FAULTS = ("garbage", "shape", "nan", "inf", "negative", "error", "500", "hung")
_serial = count(1)


def p110_description() -> dict[str, Any]:
    """A Tapo P110 (EU, firmware 1.3.x, KLAP login v2) as its answers look: written for
    plugwatch from the protocol's documented fields, with the keys the driver and python-kasa read.
    """
    return {
        "discovery_result": {"error_code": 0, "result": {
            "device_type": "SMART.TAPOPLUG", "device_model": "P110(EU)",
            "mgt_encrypt_schm": {"encrypt_type": "KLAP", "http_port": 80,
                                 "is_support_https": False, "lv": 2},
            "factory_default": False, "is_support_iot_cloud": True, "obd_src": "tplink"}},
        "component_nego": {"component_list": [
            {"id": c, "ver_code": v} for c, v in (
                ("device", 2), ("firmware", 2), ("time", 1), ("led", 1), ("energy_monitoring", 2),
                ("device_local_time", 1), ("default_states", 1), ("power_protection", 1))]},
        "get_device_info": {
            "type": "SMART.TAPOPLUG", "model": "P110", "hw_ver": "1.0",
            "fw_ver": "1.3.1 Build 240621 Rel.162048", "device_on": True, "on_time": 0,
            "nickname": "", "region": "Europe/Berlin", "time_diff": 60, "lang": "en_US",
            "avatar": "plug", "rssi": -50, "signal_level": 2, "overheated": False,
            "power_protection_status": "normal", "specs": "", "has_set_location_info": False,
            "latitude": 0, "longitude": 0,
            "default_states": {"type": "last_states", "state": {}}},
        "get_device_time": {"region": "Europe/Berlin", "time_diff": 60, "timestamp": 0},
        "get_energy_usage": {"today_runtime": 0, "month_runtime": 0, "today_energy": 0,
                             "month_energy": 0, "local_time": "", "current_power": 0,
                             "electricity_charge": [0, 0, 0]},
        "get_current_power": {"current_power": 0},
        "get_led_info": {"led_rule": "always", "led_status": True},
        "get_max_power": {"max_power": 3680},
    }


class KlapDevice:
    """What every emulated KLAP device has: its account, its fault, its discovery answer."""

    device_type = "SMART.TAPOPLUG"
    model = "P110(EU)"
    outlets: list[EmulatedOutlet]

    def __init__(self, username: str, password: str, login_version: int) -> None:
        self.account = KlapAccount(username, password, login_version)
        self.fault: str | None = None  # one of FAULTS, or None: healthy
        serial = next(_serial)
        self.mac = f"3C-52-A1-{serial >> 16 & 255:02X}-{serial >> 8 & 255:02X}-{serial & 255:02X}"
        self.device_id = f"80{serial:038X}"

    def discovery_result(self, ip: str, http_port: int) -> dict[str, Any]:
        """The JSON a device answers a UDP 20002 probe with."""
        return {"error_code": 0, "result": {
            "device_id": self.device_id, "device_model": self.model,
            "device_type": self.device_type, "ip": ip, "mac": self.mac,
            "mgt_encrypt_schm": {"encrypt_type": "KLAP", "http_port": http_port,
                                 "is_support_https": False, "lv": self.account.login_version},
            "factory_default": False, "is_support_iot_cloud": True, "obd_src": "tplink"}}

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one decrypted request."""
        raise NotImplementedError

    def reset_energy(self) -> None:
        """Every outlet's energy counter restarts at 0."""
        for outlet in self.outlets:
            outlet.reset_energy()


class EmulatedTapo(KlapDevice):
    """A Tapo P110/P115 or Kasa KP125M/EP25 plug (SMART protocol) with one metered outlet."""

    def __init__(
        self, description: dict[str, Any] | None = None, alias: str | None = None,
        power: PowerSource = 0.0, speed: float = 1.0, username: str = "user@example.com",
        password: str = "tapo-password", clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = copy.deepcopy(description or p110_description())
        found = self.description.get("discovery_result", {})
        found = found.get("result", found)  # older dumps keep the result bare
        scheme = found.get("mgt_encrypt_schm") or {}
        super().__init__(username, password, int(scheme.get("lv") or 2))
        self.model = str(found.get("device_model", "P110(EU)"))
        self.device_type = str(found.get("device_type", "SMART.TAPOPLUG"))
        self.speed = speed
        self._clock = clock
        self._t0 = clock()
        self.alias = alias or f"emulated {self.model} {self.device_id[-4:]}"
        self.outlets = [EmulatedOutlet(self, power, self.alias, None)]
        self.firmware = str(self.description.get("get_device_info", {}).get("fw_ver", ""))

    def emulated_seconds(self) -> float:
        """Emulated time since the device was made (real seconds times `speed`)."""
        return (self._clock() - self._t0) * self.speed

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request.get("method")
        if method == "multipleRequest":
            responses = []
            for one in (request.get("params") or {}).get("requests") or []:
                name = one.get("method") if isinstance(one, dict) else None
                code, result = self._call(str(name), one.get("params") if name else None)
                responses.append({"method": name, "error_code": code,
                                  **({"result": result} if code == 0 else {})})
            return {"error_code": 0, "result": {"responses": responses}}
        code, result = self._call(str(method), request.get("params"))
        return {"error_code": code, **({"result": result} if code == 0 else {})}

    def _call(self, method: str, params: Any) -> tuple[int, Any]:
        outlet = self.outlets[0]
        if method == "set_device_info":
            if isinstance(params, dict) and isinstance(params.get("device_on"), bool):
                outlet.relay_on = params["device_on"]
            if isinstance(params, dict) and isinstance(params.get("nickname"), str):
                self.alias = base64.b64decode(params["nickname"]).decode("utf-8", "replace")
            return 0, {}
        if method not in self.description or method == "discovery_result":
            return UNKNOWN_METHOD, None
        result = copy.deepcopy(self.description[method])
        if method == "get_device_info":
            result.update(device_on=outlet.relay_on,
                          nickname=base64.b64encode(self.alias.encode()).decode(),
                          on_time=int(self.emulated_seconds() - outlet.on_since)
                          if outlet.relay_on else 0, mac=self.mac, device_id=self.device_id)
        elif method in ("get_energy_usage", "get_current_power", "get_emeter_data"):
            if self.fault == "error":
                return -1001, None
            power, energy_wh = self._power(), outlet.energy_wh
            if method == "get_energy_usage":
                result.update(current_power=_mw(power), today_energy=int(energy_wh),
                              month_energy=int(energy_wh), local_time=_local_time())
            elif method == "get_current_power":
                result.update(current_power=power if isinstance(power, str) else round(power))
            else:
                result.update(power_mw=_mw(power), energy_wh=int(energy_wh),
                              voltage_mv=round(VOLTAGE_V * 1000),
                              current_ma=round(_num(power) / VOLTAGE_V * 1000))
        return 0, result

    def _power(self) -> Any:
        faulty = {"nan": float("nan"), "inf": float("inf"), "negative": -50.0, "shape": "lots"}
        return faulty.get(self.fault or "", self.outlets[0].power_w())


class EmulatedKlapKasa(KlapDevice):
    """A Kasa plug on KLAP firmware (HS110 v4, KP115 v2...): the legacy JSON commands inside KLAP
    (login version 1), answered by the XOR emulator's EmulatedPlug, or from a device's dump
    (`{"system": {"get_sysinfo": {...}}, ...}`; its modules answer as recorded, others with
    err_code -1 like real firmware)."""

    device_type = "IOT.SMARTPLUGSWITCH"

    def __init__(self, plug: EmulatedPlug | dict[str, Any], username: str = "user@example.com",
                 password: str = "kasa-password", login_version: int = 1) -> None:
        super().__init__(username, password, login_version)
        self.plug = plug if isinstance(plug, EmulatedPlug) else None
        self.description: dict[str, Any] = {} if isinstance(plug, EmulatedPlug) else \
            copy.deepcopy(plug)
        sysinfo = self.plug.sysinfo() if self.plug is not None else \
            self.description.get("system", {}).get("get_sysinfo", {})
        self.model = str(sysinfo.get("model", "HS110(EU)"))
        self.firmware = str(sysinfo.get("sw_ver", ""))
        self.outlets = self.plug.outlets if self.plug is not None else []

    def emulated_seconds(self) -> float:
        return self.plug.emulated_seconds() if self.plug is not None else 0.0

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        from plugwatch.emulator.answers import answer

        if self.plug is not None:
            return answer(self.plug, request)
        result: dict[str, Any] = {}
        for module, methods in request.items():
            known = self.description.get(module)
            if not isinstance(known, dict) or not isinstance(methods, dict):
                result[module] = {"err_code": -1, "err_msg": "module not support"}
                continue
            result[module] = {m: copy.deepcopy(known.get(m, {"err_code": -2,
                                                            "err_msg": "member not support"}))
                              for m in methods}
        return result


def _mw(power: Any) -> Any:
    return power if isinstance(power, str) else (
        round(power * 1000) if power == power and abs(power) != float("inf") else power)


def _num(power: Any) -> float:
    return power if isinstance(power, float) and power == power and abs(power) != float(
        "inf") else 0.0


def _local_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
