"""The emulator's UDP side: each plug answering its own datagrams, and discovery for all plugs.

A legacy Kasa plug answers the encrypted JSON of any request on UDP 9999 exactly as on TCP, only
without the 4-byte length header; discovery is the same sysinfo question sent to the broadcast
address, answered by every plug.

The plugs' own ports are plain sockets in one epoll of the emulator's, which the event loop
watches as a single reader: one callback answers every datagram waiting on any of thousands of
ports. (An asyncio datagram transport per plug costs a callback per datagram and a 256 KiB
receive buffer allocated and shrunk for each: together more than answering.)
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
from collections.abc import Callable
from typing import Any, cast

from plugwatch.emulator.answers import answer
from plugwatch.emulator.plug import EmulatedPlug
from plugwatch.sources.kasa import protocol as wire

AnswerBody = Callable[[EmulatedPlug, bytes], "bytes | None"]

_BURST = 32  # discovery replies sent at once ...
_BURST_GAP_S = 0.005  # ... and the pause between bursts
_MAX_DATAGRAM = 65536


class PlugPorts:
    """The plugs' UDP ports: every request datagram gets its answer datagram (unless hung)."""

    def __init__(self, answer_body: AnswerBody) -> None:
        self.answer_body = answer_body
        self.unsent = 0  # answers the socket refused to send
        self._ports: dict[int, tuple[socket.socket, EmulatedPlug]] = {}  # fd -> socket, plug
        self._epoll: select.epoll | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, sock: socket.socket, plug: EmulatedPlug) -> None:
        """Answer the datagrams to `sock` (bound, any blocking mode) as `plug`."""
        if self._epoll is None:
            self._epoll = select.epoll()
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._epoll.fileno(), self._readable)
        sock.setblocking(False)
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._ports[sock.fileno()] = (sock, plug)

    def remove(self, sock: socket.socket) -> None:
        """Stop answering on `sock` and close it."""
        if self._ports.pop(sock.fileno(), None) is not None and self._epoll is not None:
            self._epoll.unregister(sock.fileno())
        sock.close()

    def close(self) -> None:
        """Close every port and the epoll."""
        for sock, _ in list(self._ports.values()):
            self.remove(sock)
        if self._epoll is not None and self._loop is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
        self._epoll = self._loop = None

    def _readable(self) -> None:
        assert self._epoll is not None
        ports, answer_body = self._ports, self.answer_body
        # level-triggered: a port with more than one datagram waiting is reported again
        for fd, _ in self._epoll.poll(0):
            port = ports.get(fd)
            if port is None:
                continue
            sock, plug = port
            try:
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except OSError:  # nothing after all (or an error queued for the socket)
                continue
            if plug.hung:
                continue
            out = answer_body(plug, data)
            if out is None:
                continue
            try:
                sock.sendto(out, sender)
            except OSError:  # a full buffer or an unreachable client: lost, as on a LAN
                self.unsent += 1


class DiscoveryDatagrams(asyncio.DatagramProtocol):
    """Answers a UDP sysinfo query once per online plug of `online()` ((plug, port) pairs)."""

    def __init__(self, online: Callable[[], list[tuple[EmulatedPlug, int]]]) -> None:
        self.online = online
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
        for plug, port in self.online():
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
