"""KasaDriver over real TCP: readings, strips, one request per read, and every bad answer's text.

Bad answers come from a tiny scripted asyncio server in this file; good ones from EmulatedPlug's
answers, so what the server saw (connections, decrypted requests) can be asserted too.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from plugwatch.emulator import EmulatedPlug
from plugwatch.emulator.answers import answer
from plugwatch.errors import BadAnswer, DeviceTimeout, DeviceUnreachable
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.driver import KasaDriver

# A behaviour gets the decrypted request and the writer; it answers (or not) as it likes.
Behaviour = Callable[[dict[str, Any], asyncio.StreamWriter], Awaitable[None]]


class ScriptedPlug:
    """A raw TCP server: records connections and decrypted requests, answers with `behaviour`."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> ScriptedPlug:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                (n,) = wire.HEADER.unpack(await reader.readexactly(4))
                request = json.loads(wire.decrypt(await reader.readexactly(n)))
                self.requests.append(request)
                await self.behaviour(request, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


def frame(obj: Any) -> bytes:
    body = wire.encrypt(json.dumps(obj).encode())
    return wire.HEADER.pack(len(body)) + body


def emulated(plug: EmulatedPlug) -> Behaviour:
    async def behave(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        writer.write(frame(answer(plug, request)))
    return behave


def sends(data: bytes, close: bool = False) -> Behaviour:
    async def behave(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if close:
            writer.close()
    return behave


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Behaviour], Awaitable[ScriptedPlug]]]:
    servers: list[ScriptedPlug] = []

    async def start(behaviour: Behaviour) -> ScriptedPlug:
        servers.append(await ScriptedPlug(behaviour).start())
        return servers[-1]

    yield start
    for s in servers:
        await s.stop()


async def test_v2_plug_reading_after_one_sysinfo_then_one_request_per_read(serve) -> None:
    plug = EmulatedPlug("HS110v2", alias="washer", power=1500.0)
    server = await serve(emulated(plug))
    driver = KasaDriver("127.0.0.1", server.port)
    first = await driver.read(100.0)
    second = await driver.read(101.0)
    await driver.close()
    assert (first.ts, first.power_w, first.relay_on) == (100.0, 1500.0, True)
    assert first.voltage_v == 230.0 and first.current_a == pytest.approx(1500 / 230, abs=1e-3)
    assert second.ts == 101.0 and (driver.alias, driver.model) == ("washer", "HS110(EU)")
    combined = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}
    assert server.requests == [{"system": {"get_sysinfo": {}}}, combined, combined]
    assert server.connections == 1  # one persistent connection


async def test_v1_floats_read_the_same_and_relay_off_reads_zero(serve) -> None:
    plug = EmulatedPlug("HS110v1", power=80.25)
    server = await serve(emulated(plug))
    driver = KasaDriver("127.0.0.1", server.port)
    on = await driver.read(0.0)
    plug.relay_on = False
    off = await driver.read(1.0)
    await driver.close()
    assert (on.power_w, on.relay_on, on.voltage_v) == (80.25, True, 230.0)
    assert (off.power_w, off.relay_on) == (0.0, False)
    assert off.energy_kwh is not None and off.energy_kwh >= 0


async def test_strip_outlets_by_index_and_id_share_one_connection(serve) -> None:
    strip = EmulatedPlug("HS300", power=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    strip.outlets[4].relay_on = False
    server = await serve(emulated(strip))
    drivers = [KasaDriver("127.0.0.1", server.port, outlet=i) for i in range(5)]
    drivers.append(KasaDriver("127.0.0.1", server.port, outlet=strip.outlets[5].child_id))
    for _ in range(3):  # concurrent reads over the one connection never mix answers up
        readings = await asyncio.gather(*(d.read(0.0) for d in drivers))
        assert [r.power_w for r in readings] == [1.0, 2.0, 3.0, 4.0, 0.0, 6.0]
        assert [r.relay_on for r in readings] == [True, True, True, True, False, True]
    assert server.connections == 1
    assert drivers[2].alias == strip.outlets[2].alias
    last = server.requests[-1]
    assert last["context"] == {"child_ids": [strip.outlets[5].child_id]}
    for d in drivers:
        await d.close()


async def test_no_emeter_question_for_a_plug_without_ene(serve) -> None:
    """A plug whose feature lacks ENE is never asked for the emeter (some crash on it)."""
    info = {"alias": "lamp", "model": "HS100(EU)", "feature": "TIM", "relay_state": 1,
            "err_code": 0}
    server = await serve(sends(frame({"system": {"get_sysinfo": info}})))
    with pytest.raises(BadAnswer) as exc:
        await KasaDriver("127.0.0.1", server.port).read(0.0)
    assert str(exc.value) == (
        f"bad answer from 127.0.0.1:{server.port}: plug has no energy meter (feature 'TIM')"
    )
    assert server.requests == [{"system": {"get_sysinfo": {}}}]


async def test_reconnects_after_an_error(serve) -> None:
    plug = EmulatedPlug("KP115", power=7.0)
    good = emulated(plug)
    state = {"fail": False}

    async def flaky(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        if state["fail"]:
            writer.write(b"\x00\x00\x00\x05ab")  # truncated, then closed
            writer.close()
        else:
            await good(request, writer)

    server = await serve(flaky)
    driver = KasaDriver("127.0.0.1", server.port)
    assert (await driver.read(0.0)).power_w == 7.0
    state["fail"] = True
    with pytest.raises(BadAnswer):
        await driver.read(1.0)
    state["fail"] = False
    assert (await driver.read(2.0)).power_w == 7.0
    assert server.connections == 2
    await driver.close()


def _garbage() -> bytes:
    body = bytes(range(1, 21))
    return wire.HEADER.pack(len(body)) + body


BAD = [
    ("garbage", sends(_garbage()), BadAnswer,
     "bad answer from {w}: answer does not decrypt to JSON (first bytes 01 02 03 04 05 06 07 08): "
     "not a Kasa plug?"),
    ("lying length", sends(b"\xff\xff\xff\xff" + b"x" * 10), BadAnswer,
     "bad answer from {w}: length header says 4294967295 bytes, more than the 65536 allowed"),
    ("truncated body", sends(frame({"system": {}})[:10], close=True), BadAnswer,
     "bad answer from {w}: frame truncated after 6 of 14 bytes"),
    ("truncated header", sends(b"\x00\x00", close=True), BadAnswer,
     "bad answer from {w}: frame truncated after 2 of 4 header bytes"),
    ("short body, open", sends(frame({"system": {}})[:10]), DeviceTimeout,
     "timeout after 0.3 s reading {w}"),
    ("hang", sends(b""), DeviceTimeout, "timeout after 0.3 s reading {w}"),
    ("close", sends(b"", close=True), DeviceUnreachable,
     "{w} closed the connection without answering"),
    ("bad JSON", sends(wire.HEADER.pack(11) + wire.encrypt(b'{"system":}')), BadAnswer,
     "bad answer from {w}: answer is not valid JSON (Expecting value: line 1 column 11 (char 10))"),
    ("wrong shape", sends(frame({"system": []})), BadAnswer,
     "bad answer from {w}: answer has no 'system' object"),
    ("no method", sends(frame({"system": {"get_time": {}}})), BadAnswer,
     "bad answer from {w}: answer has no system.get_sysinfo object"),
    ("err_code", sends(frame({"system": {"get_sysinfo": {"err_code": -1, "err_msg": "busy"}}})),
     BadAnswer, "bad answer from {w}: system.get_sysinfo failed with err_code -1 (busy)"),
]


@pytest.mark.parametrize(("behaviour", "kind", "text"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
async def test_bad_answer_gives_its_exact_one_line_error(serve, behaviour, kind, text) -> None:
    server = await serve(behaviour)
    driver = KasaDriver("127.0.0.1", server.port, timeout=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(kind) as exc:
        await driver.read(0.0)
    assert loop.time() - start < 1.0  # never longer than the timeout (plus scheduling)
    assert str(exc.value) == text.format(w=f"127.0.0.1:{server.port}")
    await driver.close()


def _sysinfo_then(second: dict[str, Any]) -> Behaviour:
    """First contact answered by a real v2 plug; every later request with `second`."""
    good = emulated(EmulatedPlug("HS110v2", power=5.0))

    async def behave(request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        if "emeter" in request:
            writer.write(frame(second))
        else:
            await good(request, writer)
    return behave


@pytest.mark.parametrize(
    ("second", "text"),
    [
        ({"system": {"get_sysinfo": {"relay_state": 1}},
          "emeter": {"err_code": -1, "err_msg": "module not support"}},
         "emeter failed with err_code -1 (module not support)"),
        ({"system": {"get_sysinfo": {"relay_state": 1}},
          "emeter": {"get_realtime": {"voltage_mv": 1, "err_code": 0}}},
         "emeter.get_realtime has neither 'power_mw' nor 'power'"),
        ({"system": {"get_sysinfo": {"relay_state": "on"}},
          "emeter": {"get_realtime": {"power_mw": 1, "err_code": 0}}},
         "sysinfo has no relay state 0 or 1"),
    ],
    ids=["emeter err_code", "emeter shape", "relay shape"],
)
async def test_bad_combined_answer_after_first_contact(serve, second, text) -> None:
    server = await serve(_sysinfo_then(second))
    with pytest.raises(BadAnswer) as exc:
        await KasaDriver("127.0.0.1", server.port).read(0.0)
    assert str(exc.value) == f"bad answer from 127.0.0.1:{server.port}: {text}"


async def test_refused_and_strip_outlet_named_in_errors(serve) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeviceUnreachable) as exc:
        await KasaDriver("127.0.0.1", port).read(0.0)
    assert str(exc.value) == f"connection refused by 127.0.0.1:{port}"

    strip = EmulatedPlug("HS300", power=1.0)
    server = await serve(emulated(strip))
    driver = KasaDriver("127.0.0.1", server.port, outlet=2, timeout=0.3)
    await driver.read(0.0)
    server.behaviour = sends(b"")
    with pytest.raises(DeviceTimeout) as exc2:
        await driver.read(1.0)
    assert str(exc2.value) == f"timeout after 0.3 s reading 127.0.0.1:{server.port} outlet 2"
    await driver.close()


async def test_timeout_covers_a_connect_that_never_completes() -> None:
    """A listener whose backlog is full never completes the handshake: still a timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(DeviceTimeout) as exc:
            await KasaDriver("127.0.0.1", port, timeout=0.3).read(0.0)
        assert loop.time() - start < 1.0
        assert str(exc.value) == f"timeout after 0.3 s reading 127.0.0.1:{port}"
    finally:
        for s in [listener, *fillers]:
            s.close()


async def test_outlets_queued_behind_a_hung_request_time_out_on_their_own_clock(serve) -> None:
    """Waiting for the shared connection counts against each read's timeout: no pile-up."""
    strip = EmulatedPlug("HS300", power=1.0)
    server = await serve(emulated(strip))
    drivers = [KasaDriver("127.0.0.1", server.port, outlet=i, timeout=0.3) for i in range(6)]
    await asyncio.gather(*(d.read(0.0) for d in drivers))
    server.behaviour = sends(b"")
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(*(d.read(1.0) for d in drivers), return_exceptions=True)
    assert loop.time() - start < 1.0
    assert all(isinstance(r, DeviceTimeout) for r in results)
    server.behaviour = emulated(strip)
    assert [r.power_w for r in await asyncio.gather(*(d.read(2.0) for d in drivers))] == [1.0] * 6
    for d in drivers:
        await d.close()


async def test_strip_without_an_outlet_says_how_to_choose(serve) -> None:
    strip = EmulatedPlug("HS300", power=1.0)
    server = await serve(emulated(strip))
    with pytest.raises(BadAnswer) as exc:
        await KasaDriver("127.0.0.1", server.port).read(0.0)
    ids = ", ".join(o.child_id for o in strip.outlets)
    assert str(exc.value) == (f"127.0.0.1:{server.port} is a power strip with 6 outlets: choose "
                              f"one by index 0..5 or by id ({ids})")
