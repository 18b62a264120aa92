"""Misbehaving Kasa plugs over real TCP, for tests and the fault-injection bench.

    plug = FaultyPlug(power_w=40.0, fault="nan")       # answers `"power_mw":NaN`
    port = await plug.start()                          # 127.0.0.1, OS-chosen port
    plug.fault = None                                  # well-behaved from now on
    await plug.stop()

Each plug is a real EmulatedPlug behind its own listener; `fault` bends its answers to combined
(sysinfo + emeter) reads, while the first contact (sysinfo only) is answered truthfully so the
driver gets as far as reading the meter. The faults are the ones real plugs and networks produce.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

from plugwatch.emulator.answers import answer
from plugwatch.emulator.plug import EmulatedPlug
from plugwatch.sources.kasa import protocol as wire

# fault -> the literal JSON text put in place of power_mw (a value json.dumps cannot write)
VALUE_FAULTS = {
    "nan": "NaN", "inf": "Infinity", "negative": "-250000", "huge": "1" + "0" * 400,
    "too_much": "9000000",  # 9 kW: more than one outlet can carry
}
FRAME_FAULTS = ("garbage", "lying_length", "wrong_shape", "hang", "flood")
FAULTS = (*VALUE_FAULTS, *FRAME_FAULTS)
_FLOOD_CHUNK = 64 * 1024
_GARBAGE = bytes(range(48))  # decrypts to no JSON at all
_PLACEHOLDER = 1234567.891  # a power_mw no real answer has, replaced in the JSON text


class FaultyPlug:
    """One Kasa plug (HS110v2 answers) on its own port that can misbehave in one of FAULTS."""

    def __init__(self, power_w: float = 40.0, fault: str | None = None, alias: str = "") -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: use one of {', '.join(FAULTS)}")
        self.plug = EmulatedPlug("HS110v2", alias=alias or None, power=power_w)
        self.fault = fault
        self.port = 0
        self.answers = 0  # frames answered (any way)
        self.connections = 0  # connections accepted
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Transport] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0: OS-chosen); returns the port. The same port after stop()."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port or self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _FaultyProtocol(self), sock=sock)
        self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._conns):
            transport.abort()
        self._conns.clear()

    def respond(self, request: dict[str, Any]) -> bytes | None:
        """The whole frame to send for one decoded request (None: send nothing)."""
        fault = self.fault if "emeter" in request else None
        if fault == "hang":
            return None
        if fault == "garbage":  # the same bytes every time: the same failure every time
            return wire.HEADER.pack(len(_GARBAGE)) + _GARBAGE
        if fault == "lying_length":
            return wire.HEADER.pack(60_000) + wire.encrypt(b'{"system":')
        if fault == "wrong_shape":
            body = wire.encrypt(b'{"system":[],"emeter":"yes"}')
            return wire.HEADER.pack(len(body)) + body
        reply = answer(self.plug, request)
        text = json.dumps(reply, separators=(",", ":"))
        if fault in VALUE_FAULTS:
            reply["emeter"]["get_realtime"]["power_mw"] = _PLACEHOLDER
            text = json.dumps(reply, separators=(",", ":")).replace(
                repr(_PLACEHOLDER), VALUE_FAULTS[fault])
        body = wire.encrypt(text.encode())
        return wire.HEADER.pack(len(body)) + body


class _FaultyProtocol(asyncio.Protocol):
    def __init__(self, owner: FaultyPlug) -> None:
        self.owner = owner
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.owner._conns.add(transport)
        self.owner.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.owner._conns.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while len(self.buf) >= 4:
            (n,) = wire.HEADER.unpack_from(self.buf)
            if n > wire.MAX_FRAME:
                self.transport.close()
                return
            if len(self.buf) < 4 + n:
                return
            body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
            try:
                request = json.loads(wire.decrypt(body))
            except ValueError:
                self.transport.close()
                return
            self.owner.answers += 1
            if self.owner.fault == "flood" and "emeter" in request:
                self._flood()
                return
            frame = self.owner.respond(request if isinstance(request, dict) else {})
            if frame is not None:
                self.transport.write(frame)

    def _flood(self) -> None:
        """Send bytes without end (while the client reads them) until the connection closes."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.owner.fault != "flood":
            return
        if transport.get_write_buffer_size() < 4 * _FLOOD_CHUNK:
            transport.write(b"\x00\x00\x10\x00" + os.urandom(_FLOOD_CHUNK - 4))
        asyncio.get_running_loop().call_later(0.001, self._flood)
