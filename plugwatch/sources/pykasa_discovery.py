"""Tapo and KLAP-firmware Kasa plugs on the LAN: TP-Link's probe on UDP 20002, through python-kasa.

python-kasa's Discover sends the probe (and the legacy XOR query on 9999, whose answers the
native discovery lists: they are left out here) and parses each answer's JSON: the device's model,
type (SMART.* is read by `driver: tapo`, IOT.* on KLAP by `driver: kasa-klap`), its encryption
and HTTP port. Nothing logs in: discovery needs no credentials.
"""

from __future__ import annotations

import asyncio
from typing import Any

from plugwatch.extras import require
from plugwatch.sources.lan import Found

PROBE_PORTS = (20002, 20004)


async def discover_klap(target: str = "255.255.255.255", timeout: float = 3.0) -> list[Found]:
    """Every device that answered TP-Link's probe at `target` within `timeout` seconds."""
    kasa = require("kasa", "kasa-new", "finding Tapo and KLAP-firmware Kasa plugs")
    answers: dict[str, dict[str, Any]] = {}

    def raw(info: dict[str, Any]) -> None:
        meta = info.get("meta") or {}
        result = info.get("discovery_response")
        if meta.get("port") in PROBE_PORTS and isinstance(result, dict):
            answers.setdefault(str(meta.get("ip")), result.get("result", result))

    wait: Any = timeout  # python-kasa's type says int; it waits fractions as well
    await _resolve(target)
    try:
        await kasa.Discover.discover(target=target, discovery_timeout=wait,
                                     on_discovered_raw=raw)
    except OSError as exc:
        from plugwatch.errors import DeviceUnreachable

        raise DeviceUnreachable(f"cannot send discovery to {target}: {exc.strerror or exc}") \
            from None
    return [found for ip, info in answers.items() if (found := _found(ip, info)) is not None]


async def _resolve(target: str) -> None:
    """DeviceUnreachable naming `target` when it is no address (python-kasa would raise)."""
    import socket

    from plugwatch.errors import DeviceUnreachable

    try:
        await asyncio.get_running_loop().getaddrinfo(target, 20002, family=socket.AF_INET)
    except OSError as exc:
        raise DeviceUnreachable(f"cannot resolve discovery target {target!r}: "
                                f"{exc.strerror or exc}") from None


def _found(ip: str, info: dict[str, Any]) -> Found | None:
    device_type = str(info.get("device_type", ""))
    scheme = info.get("mgt_encrypt_schm") or {}
    if not device_type or not isinstance(scheme, dict):
        return None
    encryption = str(scheme.get("encrypt_type") or "?")
    login = f" login v{scheme['lv']}" if scheme.get("lv") else ""
    https = " over HTTPS" if scheme.get("is_support_https") else ""
    driver = "tapo" if device_type.startswith("SMART.") else "kasa-klap"
    port = scheme.get("http_port")
    return Found(
        host=ip, port=port if isinstance(port, int) else 80, driver=driver,
        model=str(info.get("device_model", "?")), alias=str(info.get("device_name") or ""),
        device_id=str(info.get("device_id", "")),
        details={"device_type": device_type, "encryption": encryption + login + https},
        note=f"{device_type}, {encryption}{login}{https}")
