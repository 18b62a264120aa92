"""What an emulated plug answers to a decoded request, module by module, like real firmware.

Unknown modules get `{"<module>":{"err_code":-1,"err_msg":"module not support"}}` and unknown
methods of a known module `{"err_code":-2,"err_msg":"member not support"}`, as real plugs do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from plugwatch.emulator.plug import EmulatedOutlet, EmulatedPlug

Handler = Callable[[EmulatedPlug, list[EmulatedOutlet], Any], dict[str, Any]]
_OK: dict[str, Any] = {"err_code": 0}
_NO_MODULE = {"err_code": -1, "err_msg": "module not support"}
_NO_MEMBER = {"err_code": -2, "err_msg": "member not support"}
_NO_CHILD = {"err_code": -14, "err_msg": "entry not exist"}


def answer(plug: EmulatedPlug, request: dict[str, Any]) -> dict[str, Any]:
    """The answer object to one request (which may ask several modules at once)."""
    outlets = plug.outlets_for(request.get("context"))
    result: dict[str, Any] = {}
    for module, methods in request.items():
        if module == "context":
            continue
        table = _MODULES.get(module)
        if table is None or not isinstance(methods, dict):
            result[module] = dict(_NO_MODULE)
            continue
        out: dict[str, Any] = {}
        for method, args in methods.items():
            handler = table.get(method)
            if handler is None:
                out[method] = dict(_NO_MEMBER)
            elif outlets is None:
                out[method] = dict(_NO_CHILD)
            else:
                out[method] = handler(plug, outlets, args)
        result[module] = out
    return result


def _sysinfo(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    return plug.sysinfo()


def _set_relay(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    state = args.get("state") if isinstance(args, dict) else None
    if state not in (0, 1):
        return {"err_code": -3, "err_msg": "invalid argument"}
    for outlet in outlets:
        outlet.relay_on = state == 1
    return dict(_OK)


def _set_alias(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    alias = args.get("alias") if isinstance(args, dict) else None
    if not isinstance(alias, str):
        return {"err_code": -3, "err_msg": "invalid argument"}
    if plug.is_strip and len(outlets) < len(plug.outlets):
        for outlet in outlets:
            outlet.alias = alias
    else:
        plug.alias = alias
    return dict(_OK)


def _realtime(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    if len(outlets) == 1:
        return outlets[0].realtime(plug.model.emeter_v2)
    # a strip asked without context: the sum of its outlets
    parts = [o.realtime(plug.model.emeter_v2) for o in outlets]
    total = {k: sum(p[k] for p in parts) for k in parts[0] if k not in ("err_code",)}
    total["voltage_mv" if plug.model.emeter_v2 else "voltage"] = parts[0].get(
        "voltage_mv", parts[0].get("voltage"))
    total["err_code"] = 0
    return total


def _daystat(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    now = time.localtime()
    energy_wh = sum(o.energy_wh for o in outlets)
    entry = {"year": now.tm_year, "month": now.tm_mon, "day": now.tm_mday}
    entry.update(_energy_field(plug, energy_wh))
    return {"day_list": [entry], "err_code": 0}


def _monthstat(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    now = time.localtime()
    energy_wh = sum(o.energy_wh for o in outlets)
    entry = {"year": now.tm_year, "month": now.tm_mon}
    entry.update(_energy_field(plug, energy_wh))
    return {"month_list": [entry], "err_code": 0}


def _energy_field(plug: EmulatedPlug, energy_wh: float) -> dict[str, Any]:
    if plug.model.emeter_v2:
        return {"energy_wh": round(energy_wh)}
    return {"energy": round(energy_wh / 1000.0, 6)}


def _time(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    t = time.localtime()
    return {"year": t.tm_year, "month": t.tm_mon, "mday": t.tm_mday, "hour": t.tm_hour,
            "min": t.tm_min, "sec": t.tm_sec, "err_code": 0}


def _timezone(plug: EmulatedPlug, outlets: list[EmulatedOutlet], args: Any) -> dict[str, Any]:
    return {"index": 39, "err_code": 0}  # 39 = UTC in the Kasa timezone table


_MODULES: dict[str, dict[str, Handler]] = {
    "system": {"get_sysinfo": _sysinfo, "set_relay_state": _set_relay, "set_dev_alias": _set_alias},
    "emeter": {"get_realtime": _realtime, "get_daystat": _daystat, "get_monthstat": _monthstat},
    "time": {"get_time": _time, "get_timezone": _timezone},
}
