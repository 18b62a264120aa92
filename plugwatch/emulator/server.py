"""Emulator: serves EmulatedPlugs over the real Kasa wire protocol, one TCP listener per plug.

With `udp=True` each plug also answers datagrams on the UDP port of the same number, as a real
plug answers on TCP and UDP 9999 (`tcp=False`: UDP only, for benches of thousands of UDP plugs).
Also answers UDP discovery (encrypted JSON, no length prefix) for all its plugs on one UDP port.
asyncio BufferedProtocols (no per-receive allocation), and for UDP one epoll for every plug's port
(datagrams.PlugPorts), keep the per-request cost small enough for thousands of plugs per process.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import resource
import socket
import weakref
from typing import Any

from plugwatch.emulator.answers import answer
from plugwatch.emulator.datagrams import DiscoveryDatagrams, PlugPorts
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


_COMBINED: dict[str, Any] = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}
# clients repeat the same few requests: parse once (request, whether it is plugwatch's combined)
_parsed: dict[bytes, tuple[dict[str, Any], bool]] = {}
_dumps = json.JSONEncoder(separators=(",", ":")).encode
# per plug: (alias, the cipher text of the answer up to its sysinfo's relay_state)
_heads: weakref.WeakKeyDictionary[EmulatedPlug, tuple[str, bytes]] = weakref.WeakKeyDictionary()


def answer_body(plug: EmulatedPlug, body: bytes) -> bytes | None:
    """The encrypted answer to an encrypted request body (None if it is not a JSON object)."""
    known = _parsed.get(body)
    if known is None:
        try:
            request = json.loads(wire.decrypt(body))
        except (ValueError, RecursionError):
            return None
        if not isinstance(request, dict):
            return None
        known = (request, request == _COMBINED)
        if len(_parsed) < 256:
            _parsed[body] = known
    request, combined = known
    if combined and not plug.is_strip:
        return _combined_answer(plug)
    return wire.encrypt(_dumps(answer(plug, request)).encode())


def _combined_answer(plug: EmulatedPlug) -> bytes:
    """The answer to the sysinfo + emeter request, byte for byte what `answer` gives, cheaper:
    everything up to `relay_state` stays the same while the alias does, so its cipher text is
    kept and only the changing tail is encoded and encrypted (continuing the cipher's key)."""
    head = _heads.get(plug)
    if head is None or head[0] != plug.alias:
        base = dict(plug._base, alias=plug.alias)
        plain = '{"system":{"get_sysinfo":' + _dumps(base)[:-1] + ","
        head = _heads[plug] = (plug.alias, wire.encrypt(plain.encode()))
    main = plug.outlets[0]
    now = plug.emulated_seconds()
    on = main.relay_on
    tail = (f'"relay_state":{int(on)},"on_time":{int(now - main.on_since) if on else 0}}}}},'
            f'"emeter":{{"get_realtime":{_dumps(main.realtime(plug.model.emeter_v2))}}}}}')
    return head[1] + wire.encrypt(tail.encode(), head[1][-1])


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


_Listening = tuple[asyncio.Server | None, socket.socket | None]  # TCP, UDP


class Emulator:
    """Serves emulated plugs; `start()` returns their ports in the order given."""

    def __init__(self) -> None:
        self.plugs: list[EmulatedPlug] = []
        self._indexes: dict[int, int] = {}  # id(plug) -> index, for set_online with 5,000 plugs
        self.ports: list[int] = []
        self.host = "127.0.0.1"
        self.tcp, self.udp = True, False
        self._servers: dict[int, _Listening] = {}  # index -> listeners, while online
        self._conns: list[set[asyncio.Transport]] = []
        self._datagrams = PlugPorts(answer_body)
        self._udp: asyncio.DatagramTransport | None = None

    async def start(
        self, plugs: list[EmulatedPlug], host: str = "127.0.0.1", port: int = 0,
        discovery_port: int | None = None, *, udp: bool = False, tcp: bool = True,
    ) -> list[int]:
        """Listen for every plug (port 0: OS-chosen ports; port P: P..P+N-1); returns the ports.

        `udp=True`: each plug answers datagrams on UDP at its (TCP) port number too; `tcp=False`
        leaves TCP out. With `discovery_port`, UDP discovery is answered on that port (0:
        OS-chosen, see `discovery_address`).
        """
        if not (tcp or udp):
            raise ValueError("an emulator needs tcp or udp (or both)")
        raise_open_file_limit()
        self.host = host
        self.tcp, self.udp = tcp, udp
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
                    lambda: DiscoveryDatagrams(self.online), local_addr=(host, discovery_port)
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
            server, udp = self._servers.pop(index)
            if server is not None:
                server.close()
            if udp is not None:
                self._datagrams.remove(udp)
            for transport in list(self._conns[index]):
                transport.abort()
            self._conns[index].clear()

    async def stop(self) -> None:
        """Close every listener and connection."""
        for plug in list(self.plugs):
            await self.set_online(plug, False)
        self._datagrams.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def _listen(self, index: int) -> None:
        """Open the plug's TCP listener and/or UDP port (the same number for both)."""
        loop = asyncio.get_running_loop()
        plug, conns = self.plugs[index], self._conns[index]
        # Sockets bound here (not a host name given to create_server) skip an executor round
        # trip for getaddrinfo per plug: 5,000 listeners start several times faster.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(20):  # an OS-chosen TCP port may be taken on UDP: choose again
            tcp = udp = None
            try:
                port = self.ports[index]
                if self.tcp:
                    tcp = socket.socket(family, socket.SOCK_STREAM)
                    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    tcp.bind((self.host, port))
                    port = tcp.getsockname()[1]
                if self.udp:
                    udp = socket.socket(family, socket.SOCK_DGRAM)
                    udp.bind((self.host, port))
                    port = udp.getsockname()[1]
            except OSError as exc:
                for sock in (tcp, udp):
                    if sock is not None:
                        sock.close()
                if exc.errno == errno.EADDRINUSE and self.ports[index] == 0 and self.udp:
                    continue
                raise
            break
        else:
            raise OSError(errno.EADDRINUSE, "no port free on both TCP and UDP")
        server = None
        try:
            if tcp is not None:
                tcp.listen(128)
                tcp.setblocking(False)
                server = await loop.create_server(lambda: _PlugProtocol(plug, conns), sock=tcp)
            if udp is not None:
                self._datagrams.add(udp, plug)
        except BaseException:
            for sock in (tcp, udp):
                if sock is not None:
                    sock.close()
            if server is not None:
                server.close()
            raise
        self.ports[index] = port
        self._servers[index] = (server, udp)

    def _index(self, plug: EmulatedPlug) -> int:
        index = self._indexes.get(id(plug))
        if index is not None and self.plugs[index] is plug:
            return index
        raise ValueError(f"plug {plug.alias!r} is not served by this emulator")
