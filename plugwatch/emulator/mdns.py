"""Announce emulated Shelly devices over mDNS as real ones do (python-zeroconf's responder, the
`[mdns]` extra): Gen2/Gen3 as `<app>-<mac>._shelly._tcp.local.` (TXT gen, app, ver) and
`_http._tcp`, Gen1 only as `shellyplug-s-<MAC>._http._tcp.local.`.

    announcer = MdnsAnnouncer()
    await announcer.start(devices, "127.0.0.1", ports)   # answers queries until stop()
    await announcer.stop()
"""

from __future__ import annotations

import socket
from typing import Any

from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.extras import require


class MdnsAnnouncer:
    """Registers each emulated HTTP device's services on one python-zeroconf responder."""

    def __init__(self) -> None:
        self._zc: Any = None
        self._infos: list[Any] = []

    async def start(self, devices: list[EmulatedHttpDevice], host: str, ports: list[int]) -> None:
        """Announce every Shelly device (Tasmota has no mDNS of its own: skipped)."""
        require("zeroconf", "mdns", "announcing emulated Shelly devices over mDNS")
        from zeroconf import InterfaceChoice, ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        self._zc = AsyncZeroconf(interfaces=InterfaceChoice.All if host in ("0.0.0.0", "")
                                 else [host])
        for device, port in zip(devices, ports, strict=True):
            for kind, name, txt in _services(device):
                info = ServiceInfo(kind, f"{name}.{kind}", port=port, properties=txt,
                                   addresses=[socket.inet_aton(host)],
                                   server=f"{name}.local.")
                await self._zc.async_register_service(info)
                self._infos.append(info)

    async def stop(self) -> None:
        """Say goodbye (TTL 0) and close the responder."""
        if self._zc is not None:
            await self._zc.async_unregister_all_services()
            await self._zc.async_close()
            self._zc = None


def _services(device: EmulatedHttpDevice) -> list[tuple[str, str, dict[str, str]]]:
    if device.family == "tasmota":
        return []
    if device.family == "shelly1":
        return [("_http._tcp.local.", f"shellyplug-s-{device.mac}", {})]
    identity = device.answer("/shelly", {}, None)
    assert identity is not None
    import json

    info = json.loads(identity[2])
    name = str(info["id"])
    txt = {"gen": str(info["gen"]), "app": str(info["app"]), "ver": str(info["ver"])}
    return [("_shelly._tcp.local.", name, txt), ("_http._tcp.local.", name, {})]
