"""Shelly devices on the LAN, found over mDNS with python-zeroconf (the `[mdns]` extra).

Gen2/Gen3 devices announce `_shelly._tcp.local.` (TXT `gen`, `app`, `ver`) and `_http._tcp`;
Gen1 devices only `_http._tcp.local.`, under a name starting with "shelly" (shellyplug-s-...).
Every service seen within the timeout is resolved to its address and port, then asked
`GET /shelly` (never password-protected) for its model and generation; one that does not answer
is still listed with what its announcement said.
"""

from __future__ import annotations

import asyncio
from typing import Any

from plugwatch.errors import DeviceError
from plugwatch.extras import require
from plugwatch.sources.lan import Found

SHELLY = "_shelly._tcp.local."
HTTP = "_http._tcp.local."


async def discover_shelly(timeout: float = 3.0) -> list[Found]:
    """Every Shelly device announced over mDNS within `timeout` seconds."""
    require("zeroconf", "mdns", "finding Shelly devices over mDNS")
    from zeroconf import ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    seen: dict[str, str] = {}  # service name -> type

    def changed(zeroconf: Any, service_type: str, name: str,
                state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added and (
                service_type == SHELLY or name.lower().startswith("shelly")):
            seen.setdefault(name, service_type)

    azc = AsyncZeroconf()
    browser = AsyncServiceBrowser(azc.zeroconf, [SHELLY, HTTP], handlers=[changed])
    try:
        await asyncio.sleep(timeout)
        infos = [AsyncServiceInfo(kind, name) for name, kind in seen.items()]
        await asyncio.gather(*(info.async_request(azc.zeroconf, 1000) for info in infos))
    finally:
        await browser.async_cancel()
        await azc.async_close()
    announced: dict[tuple[str, int], AsyncServiceInfo] = {}
    for info in infos:
        addresses = info.parsed_addresses()
        if addresses and info.port:
            key = (addresses[0], info.port)
            if key not in announced or info.type == SHELLY:  # Gen2+'s own record says more
                announced[key] = info
    found = await asyncio.gather(*(_identify(host, port, info, timeout)
                                   for (host, port), info in announced.items()))
    return list(found)


async def _identify(host: str, port: int, info: Any, timeout: float) -> Found:
    from plugwatch.sources.shelly import ShellyDriver

    txt = {k.decode(): (v or b"").decode("utf-8", "replace")
           for k, v in (info.properties or {}).items()}
    name = info.name.removesuffix("." + info.type)
    driver = ShellyDriver(host, port, timeout=min(timeout, 2.0))
    try:
        identity = await driver.identify()
    except DeviceError:
        identity = {}
    finally:
        await driver.close()
    generation = driver.generation or int(txt.get("gen") or 1)
    model = driver.model or txt.get("app") or name.rsplit("-", 1)[0]
    device_id = str(identity.get("id") or identity.get("mac") or name)
    details = {"generation": generation, "mdns_name": name}
    return Found(host, port, "shelly", model, driver.alias or "", device_id, details,
                 note=f"Gen{generation}" + (f", app {txt['app']}" if txt.get("app") else ""))
