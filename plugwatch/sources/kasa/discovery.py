"""UDP discovery of Kasa plugs: send the encrypted sysinfo query (no length prefix), gather replies.

By default the query is broadcast to 255.255.255.255:9999; `target` may be a subnet broadcast
address or a single host. Replies are gathered until the timeout and deduplicated.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from plugwatch.errors import DeviceUnreachable
from plugwatch.sources.kasa import protocol as wire

DISCOVERY_PORT = 9999


@dataclass(frozen=True)
class FoundDevice:
    """One device that answered discovery; `port` is its TCP port (9999 unless emulated)."""

    host: str
    port: int
    model: str
    alias: str
    device_id: str
    outlets: list[dict[str, str]] = field(default_factory=list)  # [{"id", "alias"}] for strips

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with the keys host, port, model, alias, device_id, outlets."""
        return asdict(self)


def parse_reply(data: bytes, host: str) -> FoundDevice | None:
    """The device described by one discovery reply, or None if it is not a sysinfo answer."""
    try:
        info = wire.section(wire.parse_answer(data), "system", "get_sysinfo")
    except ValueError:
        return None
    children = info.get("children")
    if not isinstance(children, list):
        children = []
    outlets = [
        {"id": str(c.get("id")), "alias": str(c.get("alias", ""))}
        for c in children
        if isinstance(c, dict)
    ]
    port = info.get("emulated_port")
    return FoundDevice(
        host=host,
        port=port if isinstance(port, int) else DISCOVERY_PORT,
        model=str(info.get("model", "?")),
        alias=str(info.get("alias", "")),
        device_id=str(info.get("deviceId", "")),
        outlets=outlets,
    )


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.found: dict[tuple[str, int, str], FoundDevice] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        device = parse_reply(data, addr[0])
        if device is not None:
            self.found.setdefault((device.host, device.port, device.device_id), device)


async def discover(
    target: str = "255.255.255.255", port: int = DISCOVERY_PORT, timeout: float = 3.0
) -> list[FoundDevice]:
    """Every device that answered within `timeout` seconds, sorted by host, port and alias."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise DeviceUnreachable(
            f"cannot resolve discovery target {target!r}: {exc.strerror or exc}"
        ) from None
    address = infos[0][4]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setblocking(False)
    try:
        sock.bind(("0.0.0.0", 0))
        transport, collector = await loop.create_datagram_endpoint(_Collector, sock=sock)
    except OSError as exc:
        sock.close()
        raise DeviceUnreachable(f"cannot open a UDP socket for discovery: {exc.strerror}") from None
    query = wire.encode_datagram(wire.SYSINFO_QUERY)
    try:
        # UDP may drop a datagram: ask three times spread over the timeout.
        for _ in range(3):
            transport.sendto(query, address)
            await asyncio.sleep(timeout / 3)
    except OSError as exc:
        raise DeviceUnreachable(
            f"cannot send discovery to {target}:{port}: {exc.strerror or exc}"
        ) from None
    finally:
        transport.close()
    return sorted(collector.found.values(), key=lambda d: (d.host, d.port, d.alias))


def describe(device: FoundDevice) -> str:
    """One human-readable line for a found device."""
    outlets = f", {len(device.outlets)} outlets" if device.outlets else ""
    return f"{device.host}:{device.port}  {device.model}  {json.dumps(device.alias)}  " \
        f"id {device.device_id}{outlets}"
