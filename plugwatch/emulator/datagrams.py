"""The emulator's UDP side: each plug answering its own datagrams, and discovery for all plugs.

A legacy Kasa plug answers the encrypted JSON of any request on UDP 9999 exactly as on TCP, only
without the 4-byte length header; discovery is the same sysinfo question sent to the broadcast
address, answered by every plug.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast

from plugwatch.emulator.answers import answer
from plugwatch.emulator.plug import EmulatedPlug
from plugwatch.sources.kasa import protocol as wire

AnswerBody = Callable[[EmulatedPlug, bytes], "bytes | None"]

_BURST = 32  # discovery replies sent at once ...
_BURST_GAP_S = 0.005  # ... and the pause between bursts


class PlugDatagrams(asyncio.DatagramProtocol):
    """One plug's UDP port: every request datagram gets its answer datagram (unless hung)."""

    def __init__(self, plug: EmulatedPlug, answer_body: AnswerBody) -> None:
        self.plug = plug
        self.answer_body = answer_body
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.plug.hung or self.transport is None:
            return
        out = self.answer_body(self.plug, data)
        if out is not None:
            self.transport.sendto(out, addr)


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
