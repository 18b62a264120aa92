"""Emulator: serves EmulatedPlugs over the real Kasa wire protocol, one TCP listener per plug.

Also answers UDP discovery (encrypted JSON, no length prefix) for all its plugs on one UDP port.
asyncio BufferedProtocols (no per-receive allocation) keep the per-request cost small enough for
thousands of plugs per process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
from typing import Any, cast

from plugwatch.emulator.answers import answer
from plugwatch.emulator.plug import EmulatedPlug
from plugwatch.sources.kasa import protocol as wire

log = logging.getLogger(__name__)


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


_parsed: dict[bytes, dict[str, Any]] = {}  # clients repeat the same few requests: parse once


def answer_body(plug: EmulatedPlug, body: bytes) -> bytes | None:
    """The encrypted answer to an encrypted request body (None if it is not a JSON object)."""
    request = _parsed.get(body)
    if request is None:
        try:
            request = json.loads(wire.decrypt(body))
        except (ValueError, RecursionError):
            return None
        if not isinstance(request, dict):
            return None
        if len(_parsed) < 256:
            _parsed[body] = request
    return wire.encrypt(json.dumps(answer(plug, request), separators=(",", ":")).encode())


class _PlugProtocol(asyncio.BufferedProtocol):
    """One client connection to one emulated plug (receiving into a reused buffer)."""

    def __init__(self, plug: EmulatedPlug, conns: set[asyncio.Transport]) -> None:
        self.plug = plug
        self.conns = conns
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conns.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.conns.discard(self.transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return wire.receive_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(wire.receive_buffer()[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while len(buf) >= 4:
            (n,) = wire.HEADER.unpack_from(buf)
            if n > wire.MAX_FRAME:
                assert self.transport is not None
                self.transport.close()
                return
            if len(buf) < 4 + n:
                break
            body, buf = buf[4 : 4 + n], buf[4 + n :]
            if self.plug.hung:
                continue
            out = answer_body(self.plug, body)
            assert self.transport is not None
            if out is None:
                self.transport.close()
                return
            self.transport.write(wire.HEADER.pack(len(out)) + out)
        self.buf = buf


_BURST = 32  # discovery replies sent at once ...
_BURST_GAP_S = 0.005  # ... and the pause between bursts


class _DiscoveryProtocol(asyncio.DatagramProtocol):
    """Answers a UDP sysinfo query once per online plug."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request = json.loads(wire.decrypt(data))
        except ValueError:
            return
        if not isinstance(request, dict) or "system" not in request:
            return
        replies = []
        for plug, port in self.emulator.online():
            if plug.hung:
                continue
            reply: dict[str, Any] = answer(plug, {"system": {"get_sysinfo": {}}})
            # Not in real firmware: tells a client on 127.0.0.1 which TCP port this plug uses.
            reply["system"]["get_sysinfo"]["emulated_port"] = port
            replies.append(wire.encode_datagram(reply))
        # Real plugs answer independently; thousands of replies at once would overflow the
        # client's socket buffer, so they go out in small bursts.
        loop = asyncio.get_running_loop()
        for k in range(0, len(replies), _BURST):
            loop.call_later(k / _BURST * _BURST_GAP_S, self._send, replies[k : k + _BURST], addr)

    def _send(self, datagrams: list[bytes], addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            for datagram in datagrams:
                self.transport.sendto(datagram, addr)


class Emulator:
    """Serves emulated plugs; `start()` returns their TCP ports in the order given."""

    def __init__(self) -> None:
        self.plugs: list[EmulatedPlug] = []
        self._indexes: dict[int, int] = {}  # id(plug) -> index, for set_online with 5,000 plugs
        self.ports: list[int] = []
        self.host = "127.0.0.1"
        self._servers: dict[int, asyncio.Server] = {}  # index -> listener, while online
        self._conns: list[set[asyncio.Transport]] = []
        self._udp: asyncio.DatagramTransport | None = None

    async def start(
        self, plugs: list[EmulatedPlug], host: str = "127.0.0.1", port: int = 0,
        discovery_port: int | None = None,
    ) -> list[int]:
        """Listen for every plug (port 0: OS-chosen ports; port P: P..P+N-1); returns the ports.

        With `discovery_port`, UDP discovery is answered on that port (0: OS-chosen, see
        `discovery_address`).
        """
        raise_open_file_limit()
        self.host = host
        try:
            for i, plug in enumerate(plugs):
                self._indexes[id(plug)] = len(self.plugs)
                self.plugs.append(plug)
                self._conns.append(set())
                self.ports.append(port + i if port else 0)
                await self._listen(len(self.plugs) - 1)
            if discovery_port is not None:
                loop = asyncio.get_running_loop()
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _DiscoveryProtocol(self), local_addr=(host, discovery_port)
                )
        except BaseException:
            await self.stop()
            raise
        return list(self.ports)

    @property
    def discovery_address(self) -> tuple[str, int] | None:
        """(host, port) where UDP discovery is answered, if it is."""
        if self._udp is None:
            return None
        addr = self._udp.get_extra_info("sockname")
        return addr[0], addr[1]

    def online(self) -> list[tuple[EmulatedPlug, int]]:
        """(plug, port) for every plug that is currently listening."""
        return [(self.plugs[i], self.ports[i]) for i in self._servers]

    async def set_online(self, plug: EmulatedPlug, online: bool) -> None:
        """Offline: close the plug's listener and connections. Online: listen on the same port."""
        index = self._index(plug)
        if online and index not in self._servers:
            await self._listen(index)
        elif not online and index in self._servers:
            self._servers.pop(index).close()
            for transport in list(self._conns[index]):
                transport.abort()
            self._conns[index].clear()

    async def stop(self) -> None:
        """Close every listener and connection."""
        for plug in list(self.plugs):
            await self.set_online(plug, False)
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def _listen(self, index: int) -> None:
        plug, conns = self.plugs[index], self._conns[index]
        # A socket bound here (not a host name given to create_server) skips an executor
        # round trip for getaddrinfo per plug: 5,000 listeners start several times faster.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.ports[index]))
            sock.listen(128)
            sock.setblocking(False)
            server = await asyncio.get_running_loop().create_server(
                lambda: _PlugProtocol(plug, conns), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self.ports[index] = server.sockets[0].getsockname()[1]
        self._servers[index] = server

    def _index(self, plug: EmulatedPlug) -> int:
        index = self._indexes.get(id(plug))
        if index is not None and self.plugs[index] is plug:
            return index
        raise ValueError(f"plug {plug.alias!r} is not served by this emulator")
