"""KlapEmulator: serves emulated KLAP devices (emulator/tapo.py) over real HTTP, and answers their
UDP discovery on port 20002, each device on an address of its own as on a real LAN.

    emulator = KlapEmulator()
    [port] = await emulator.start([EmulatedTapo(power=60.0)])   # address: emulator.hosts[0]
    await emulator.set_online(device, False)                     # connections refused
    await emulator.stop()

Without `host`, every device gets its own loopback address (127.x.y.z, free for UDP 20002), so
python-kasa's discovery, which always asks port 20002, finds exactly that device, and tests running
at the same time do not answer each other's probes. A probe is answered with the 16-byte header of
TP-Link's discovery protocol (version 2, its length and a CRC-32) and the device's JSON.
"""

from __future__ import annotations

import asyncio
import binascii
import errno
import json
import random
import secrets
import socket
import struct
from typing import Any

from plugwatch.emulator.http_server import listen_http
from plugwatch.emulator.klap import BadRequest
from plugwatch.emulator.tapo import KlapDevice

DISCOVERY_PORT = 20002
_HEADER = struct.Struct(">BBHHBBII")


def discovery_datagram(answer: dict[str, Any]) -> bytes:
    """A discovery answer: the protocol's 16-byte header, then the JSON."""
    body = json.dumps(answer, separators=(",", ":")).encode()
    header = bytearray(_HEADER.pack(2, 0, 1, len(body), 17, 0, secrets.randbits(32), 0x5A6B7C8D))
    header[12:16] = binascii.crc32(bytes(header) + body).to_bytes(4, "big")
    return bytes(header) + body


class _Discovery(asyncio.DatagramProtocol):
    def __init__(self, device: KlapDevice, ip: str, port: int) -> None:
        self.device, self.ip, self.port = device, ip, port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 16 or data[0] != 2:  # not a discovery probe (a hung device still answers)
            return
        if self.transport is not None:
            reply = discovery_datagram(self.device.discovery_result(self.ip, self.port))
            self.transport.sendto(reply, addr)


class KlapEmulator:
    """Serves KLAP devices; `start()` returns their HTTP ports, `hosts` their addresses."""

    def __init__(self) -> None:
        self.devices: list[KlapDevice] = []
        self.hosts: list[str] = []
        self.ports: list[int] = []
        self.discovery = True
        self._servers: dict[int, tuple[Any, asyncio.Server, asyncio.DatagramTransport | None]] = {}

    async def start(self, devices: list[KlapDevice], host: str | None = None, port: int = 0,
                    discovery: bool = True) -> list[int]:
        """Listen for every device: on `host` at ports P..P+N-1 (port 0: OS-chosen), or without
        `host` each on its own loopback address; discovery on UDP 20002 of that address."""
        self.discovery = discovery
        try:
            for i, device in enumerate(devices):
                self.devices.append(device)
                self.hosts.append(host or "")
                self.ports.append(port + i if port else 0)
                await self._listen(len(self.devices) - 1)
        except BaseException:
            await self.stop()
            raise
        return list(self.ports)

    def where(self, device: KlapDevice) -> str:
        """host:port of a started device."""
        i = self._index(device)
        return f"{self.hosts[i]}:{self.ports[i]}"

    async def set_online(self, device: KlapDevice, online: bool) -> None:
        """Offline: close the device's listeners and connections. Online: listen again."""
        index = self._index(device)
        if online and index not in self._servers:
            await self._listen(index)
        elif not online and index in self._servers:
            web_server, listener, udp = self._servers.pop(index)
            listener.close()
            if udp is not None:
                udp.close()
            await web_server.shutdown(0.1)

    async def stop(self) -> None:
        """Close every listener and connection."""
        for device in list(self.devices):
            await self.set_online(device, False)

    def _index(self, device: KlapDevice) -> int:
        return next(i for i, d in enumerate(self.devices) if d is device)

    async def _listen(self, index: int) -> None:
        device = self.devices[index]
        for _ in range(20):  # a random loopback address whose UDP 20002 is free
            host = self.hosts[index] or _loopback_address()
            udp = None
            try:
                if self.discovery:
                    try:
                        udp = await self._discovery(device, host, index)
                    except OSError as exc:  # one device per address answers, as on a LAN
                        if not (self.hosts[index] and index and exc.errno == errno.EADDRINUSE):
                            raise
                web_server, listener, port = await listen_http(
                    _handler(device), host, self.ports[index])
            except OSError as exc:
                if udp is not None:
                    udp.close()
                if self.hosts[index] or exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self.hosts[index], self.ports[index] = host, port
            if udp is not None:
                udp.get_protocol().port = port  # type: ignore[attr-defined]
            self._servers[index] = (web_server, listener, udp)
            return
        raise OSError(errno.EADDRINUSE, "no free loopback address for UDP 20002")

    async def _discovery(self, device: KlapDevice, host: str,
                         index: int) -> asyncio.DatagramTransport:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, DISCOVERY_PORT))
        except OSError:
            sock.close()
            raise
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Discovery(device, host, self.ports[index]), sock=sock)
        return transport


def _handler(device: KlapDevice) -> Any:
    """The aiohttp handler of one device: the two handshakes and encrypted requests."""
    from aiohttp import web

    account = device.account

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=404)
        body = await request.read()
        cookie = request.cookies.get("TP_SESSIONID")
        if request.path == "/app/handshake1":
            try:
                made, answer = account.handshake1(body)
            except ValueError:
                return web.Response(status=400)
            response = web.Response(body=answer)
            response.set_cookie("TP_SESSIONID", made)
            response.set_cookie("TIMEOUT", "86400")
            return response
        if request.path == "/app/handshake2":
            return web.Response(status=200 if account.handshake2(cookie, body) else 403)
        if request.path != "/app/request":
            return web.Response(status=404)
        session = account.session(cookie)
        if session is None:
            return web.Response(status=403)
        if device.fault == "hung":
            await asyncio.Event().wait()
        if device.fault == "500":
            return web.Response(status=500)
        try:
            seq = int(request.query.get("seq", ""))
            asked = json.loads(session.open(seq, body))
        except (ValueError, BadRequest):
            return web.Response(status=400)
        if device.fault == "garbage":
            return web.Response(body=secrets.token_bytes(61))
        answer = json.dumps(device.answer(asked), separators=(",", ":")).encode()
        return web.Response(body=session.seal(seq, answer))

    return handle


def _loopback_address() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
