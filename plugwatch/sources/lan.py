"""`plugwatch discover`: every plug family that can be found on a LAN, asked at the same time.

- `kasa`: legacy Kasa plugs answer the XOR sysinfo query on UDP 9999 (sources/kasa/discovery.py);
- `tapo`: Tapo and KLAP-firmware Kasa plugs answer TP-Link's probe on UDP 20002, asked through
  python-kasa's Discover (the `[kasa-new]` extra; sources/pykasa_discovery.py);
- `shelly`: Shelly devices announce themselves over mDNS, `_shelly._tcp` (Gen2+) and `_http._tcp`
  (Gen1, named shelly...), browsed with python-zeroconf (the `[mdns]` extra;
  sources/shelly_mdns.py); each is then asked `GET /shelly` for its model and generation.

Each device found says which `driver:` reads it. A family whose extra is missing is skipped with
a note naming the extra, unless it was asked for by name (then that is the error).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from plugwatch.errors import MissingExtra

FAMILIES = ("kasa", "tapo", "shelly")


@dataclass(frozen=True)
class Found:
    """One device that answered: where, which driver reads it, what it said about itself."""

    host: str
    port: int
    driver: str
    model: str
    alias: str
    device_id: str
    details: dict[str, Any] = field(default_factory=dict)  # per family, e.g. Kasa's outlets
    note: str = ""  # e.g. "KLAP login v2", shown in brackets

    def to_json(self) -> dict[str, Any]:
        """host, port, driver, model, alias, device_id, then the family's own keys."""
        return {"host": self.host, "port": self.port, "driver": self.driver, "model": self.model,
                "alias": self.alias, "device_id": self.device_id, **self.details}

    def line(self) -> str:
        """One line for people."""
        outlets = self.details.get("outlets")
        extra = f", {len(outlets)} outlets" if outlets else ""
        note = f"  ({self.note})" if self.note else ""
        return (f"{self.host}:{self.port}  {self.model}  {json.dumps(self.alias)}  id "
                f"{self.device_id}{extra}  driver: {self.driver}{note}")


async def discover_lan(
    families: Sequence[str], target: str = "255.255.255.255", kasa_port: int = 9999,
    timeout: float = 3.0, explicit: bool = False,
) -> tuple[list[Found], list[str]]:
    """(devices found, notes) asking every family in `families` at once for `timeout` s.
    `explicit`: the families were named by the user, so a missing extra is an error."""
    jobs = {name: _JOBS[name](target, kasa_port, timeout) for name in families}
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    found: list[Found] = []
    notes: list[str] = []
    for name, result in zip(jobs, results, strict=True):
        if isinstance(result, MissingExtra) and not explicit:
            notes.append(f"{name}: not searched ({result})")
        elif isinstance(result, BaseException):
            raise result
        else:
            found.extend(result)
    return sorted(found, key=lambda d: (d.host, d.port, d.alias)), notes


async def _kasa(target: str, port: int, timeout: float) -> list[Found]:
    from plugwatch.sources.kasa.discovery import discover

    return [Found(d.host, d.port, "kasa", d.model, d.alias, d.device_id,
                  {"outlets": d.outlets}) for d in await discover(target, port, timeout)]


async def _tapo(target: str, port: int, timeout: float) -> list[Found]:
    from plugwatch.sources.pykasa_discovery import discover_klap

    return await discover_klap(target, timeout)


async def _shelly(target: str, port: int, timeout: float) -> list[Found]:
    from plugwatch.sources.shelly_mdns import discover_shelly

    return await discover_shelly(timeout)


_JOBS = {"kasa": _kasa, "tapo": _tapo, "shelly": _shelly}
