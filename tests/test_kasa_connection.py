"""The Kasa TCP link over real sockets: garbage hangs up, floods stay bounded, frames in pieces.

Each server here is a raw asyncio server in this file that misbehaves on purpose; what it saw
(connections, bytes it managed to write before the client hung up) is asserted too.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from plugwatch.emulator import EmulatedPlug
from plugwatch.emulator.answers import answer
from plugwatch.errors import BadAnswer, DeviceTimeout
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.driver import KasaDriver

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawPlug"], Awaitable[None]]


class RawPlug:
    """A TCP server running `handler` per connection; counts connections and bytes written."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.written = 0
        self.hung_up = asyncio.Event()  # the client closed a connection we were writing to
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> RawPlug:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.hung_up.set()
        finally:
            writer.close()

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.written += len(data)


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Handler], Awaitable[RawPlug]]]:
    servers: list[RawPlug] = []

    async def start(handler: Handler) -> RawPlug:
        servers.append(await RawPlug(handler).start())
        return servers[-1]

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def frame_of(obj: object) -> bytes:
    return wire.encode_request(obj)  # type: ignore[arg-type]


PLUG = EmulatedPlug("HS110v2", power=42.0)


async def request(reader: asyncio.StreamReader) -> dict:
    (n,) = wire.HEADER.unpack(await reader.readexactly(4))
    return dict(json.loads(wire.decrypt(await reader.readexactly(n))))


async def test_a_garbage_frame_closes_the_connection_and_the_next_read_reconnects(raw) -> None:
    """The plug answers one frame that does not decrypt to JSON: BadAnswer, the client hangs
    up at once (the plug sees its connection end), and the next read opens a new one."""
    state = {"garbage": True}

    async def handler(reader, writer, plug) -> None:
        while True:
            req = await request(reader)
            if state["garbage"] and "emeter" in req:
                body = bytes(range(1, 21))
                await plug.send(writer, wire.HEADER.pack(len(body)) + body)
                await reader.read(1)  # returns b"" when the client has hung up
                plug.hung_up.set()
                return
            await plug.send(writer, frame_of(answer(PLUG, req)))

    server = await raw(handler)
    driver = KasaDriver("127.0.0.1", server.port, timeout=1.0)
    with pytest.raises(BadAnswer) as exc:
        await driver.read(0.0)
    assert "answer does not decrypt to JSON" in str(exc.value)
    await asyncio.wait_for(server.hung_up.wait(), 1.0)
    state["garbage"] = False
    assert (await driver.read(1.0)).power_w == 42.0
    assert server.connections == 2
    await driver.close()


async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, plug: RawPlug,
                first: bytes = b"") -> None:
    """Answer the first request with `first`, then write junk as fast as the socket takes it."""
    await request(reader)
    await plug.send(writer, first)
    junk = b"\x00\x00\x80\x00" + bytes(range(256)) * 256  # a header announcing 32 KiB, then junk
    while plug.written < 512 * 1024 * 1024:
        await plug.send(writer, junk)
    raise AssertionError("the client never hung up on a plug flooding it")


@pytest.mark.parametrize("first", [b"", frame_of(answer(PLUG, {"system": {"get_sysinfo": {}}}))],
                         ids=["floods instead of answering", "floods after its answer"])
async def test_a_flooding_plug_is_hung_up_on_after_one_frame(raw, first: bytes) -> None:
    """A plug that writes junk without end is hung up on within a frame's worth of bytes, at a
    small cost in CPU; receiving never grows past the announced frame length."""
    server = await raw(lambda r, w, p: flood(r, w, p, first))
    driver = KasaDriver("127.0.0.1", server.port, timeout=1.0)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    with pytest.raises(BadAnswer):
        await driver.read(0.0)
    await asyncio.wait_for(server.hung_up.wait(), 2.0)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    assert time.monotonic() - start < 2.0
    # what the kernel's socket buffers took (a few MB on loopback), not what the client read
    assert server.written < 64 * 1024 * 1024
    assert cpu < 0.5  # the server's own writing included
    await driver.close()


async def test_a_frame_arriving_byte_by_byte_is_read_whole(raw) -> None:
    """Header and body trickling in one byte at a time are assembled into the right answer."""

    async def handler(reader, writer, plug) -> None:
        while True:
            data = frame_of(answer(PLUG, await request(reader)))
            for i in range(len(data)):
                await plug.send(writer, data[i:i + 1])
                if i % 50 == 0 or i < 6:
                    await asyncio.sleep(0.001)

    server = await raw(handler)
    driver = KasaDriver("127.0.0.1", server.port, timeout=3.0)
    reading = await driver.read(5.0)
    assert (reading.ts, reading.power_w, reading.relay_on) == (5.0, 42.0, True)
    assert server.connections == 1
    await driver.close()


async def test_an_answer_with_extra_bytes_is_used_then_the_connection_closed(raw) -> None:
    """Bytes past the announced frame are not a Kasa plug's way: the reading is kept, the
    connection dropped, the next read reconnects."""

    async def handler(reader, writer, plug) -> None:
        while True:
            req = await request(reader)
            extra = b"\x01\x02\x03" if "emeter" in req else b""
            await plug.send(writer, frame_of(answer(PLUG, req)) + extra)

    server = await raw(handler)
    driver = KasaDriver("127.0.0.1", server.port, timeout=1.0)
    assert (await driver.read(0.0)).power_w == 42.0
    assert (await driver.read(1.0)).power_w == 42.0
    assert server.connections == 2
    await driver.close()


async def test_a_late_answer_is_dropped_and_the_connection_kept(raw) -> None:
    """A plug that answers after the timeout (a loaded plug, or a loaded machine): that read
    fails as a timeout, its late answer is dropped when it comes, and the next read gets its
    own answer on the same connection: lateness costs no reconnection."""
    answered = {"emeter": 0}

    async def handler(reader, writer, plug) -> None:
        while True:
            req = await request(reader)
            power = 42.0
            if "emeter" in req:
                answered["emeter"] += 1
                if answered["emeter"] == 1:
                    await asyncio.sleep(0.6)
                    power = 1.0  # the late answer: never taken for a later read's
            await plug.send(writer, frame_of(answer(EmulatedPlug("HS110v2", power=power), req)))

    server = await raw(handler)
    driver = KasaDriver("127.0.0.1", server.port, timeout=0.3)
    with pytest.raises(DeviceTimeout):
        await driver.read(0.0)
    await asyncio.sleep(0.5)  # the late answer arrives meanwhile
    assert (await driver.read(1.0)).power_w == 42.0
    assert (await driver.read(2.0)).power_w == 42.0
    assert answered["emeter"] == 3
    assert server.connections == 1
    await driver.close()


async def test_a_plug_that_stops_answering_is_hung_up_on_at_the_second_timeout(raw) -> None:
    """No answer to a read, nor to the next one queued behind it: the second timeout hangs up,
    and once the plug answers again the next read reconnects and reads."""
    state = {"hung": True}

    async def handler(reader, writer, plug) -> None:
        while True:
            req = await request(reader)
            if not (state["hung"] and "emeter" in req):
                await plug.send(writer, frame_of(answer(PLUG, req)))

    server = await raw(handler)
    driver = KasaDriver("127.0.0.1", server.port, timeout=0.2)
    for ts in (0.0, 1.0):
        with pytest.raises(DeviceTimeout):
            await driver.read(ts)
    await asyncio.wait_for(server.hung_up.wait(), 1.0)
    state["hung"] = False
    assert (await driver.read(2.0)).power_w == 42.0
    assert server.connections == 2
    await driver.close()
