"""The emulated device models: the fixed parts of their sysinfo, shaped like real device dumps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Model:
    """One emulated model: its sysinfo constants, emeter style and number of outlets."""

    key: str  # the name used on the command line, e.g. "HS110v2"
    model: str  # what sysinfo's `model` says, e.g. "HS110(EU)"
    hw_ver: str
    sw_ver: str
    dev_name: str
    emeter_v2: bool  # True: ints power_mw/voltage_mv/current_ma/total_wh; False: v1 floats
    outlets: int  # 0 for a single plug, else the number of children


MODELS: dict[str, Model] = {
    m.key: m
    for m in (
        Model("HS110v1", "HS110(EU)", "1.0", "1.2.6 Build 200727 Rel.121701",
              "Wi-Fi Smart Plug With Energy Monitoring", emeter_v2=False, outlets=0),
        Model("HS110v2", "HS110(EU)", "2.0", "1.5.10 Build 200522 Rel.104340",
              "Smart Wi-Fi Plug With Energy Monitoring", emeter_v2=True, outlets=0),
        Model("KP115", "KP115(EU)", "1.0", "1.0.18 Build 210910 Rel.141202",
              "Smart Wi-Fi Plug Mini", emeter_v2=True, outlets=0),
        Model("HS300", "HS300(US)", "1.0", "1.0.21 Build 210524 Rel.161309",
              "Smart Wi-Fi Power Strip", emeter_v2=True, outlets=6),
    )
}


def base_sysinfo(model: Model, alias: str, device_id: str) -> dict[str, Any]:
    """The constant part of a device's sysinfo (relay state, on_time, children added per call)."""
    mac = ":".join(device_id[i : i + 2] for i in range(28, 40, 2)).upper()
    info: dict[str, Any] = {
        "sw_ver": model.sw_ver,
        "hw_ver": model.hw_ver,
        "model": model.model,
        "deviceId": device_id,
        "oemId": "FDD18403D5E8DB3613009C820963E018",
        "hwId": "044A516EE63C875F9458DA25C2CCC5A0",
        "rssi": -52,
        "mac": mac,
        "type": "IOT.SMARTPLUGSWITCH",
        "dev_name": model.dev_name,
        "alias": alias,
        "mic_type": "IOT.SMARTPLUGSWITCH",
        "feature": "TIM:ENE",
        "updating": 0,
        "led_off": 0,
        "icon_hash": "",
        "active_mode": "none",
        "err_code": 0,
    }
    if model.emeter_v2:
        info.update(latitude_i=0, longitude_i=0)
    else:
        info.update(latitude=0.0, longitude=0.0)
    if model.outlets:
        info["child_num"] = model.outlets
    else:
        info["next_action"] = {"type": -1}
    return info
