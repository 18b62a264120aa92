"""Kasa over UDP for real: the emulator answers datagrams like a plug, one socket polls them all,
a lost datagram is retried within the interval, and only an unanswered retry is a failure."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from plugwatch.config import config_from_dict
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.emulator.answers import answer
from plugwatch.emulator.server import answer_body
from plugwatch.errors import DeviceTimeout
from plugwatch.model import ReadFailure, Reading, Sample
from plugwatch.service.sampler import SampledPlug, Sampler
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.driver import KasaDriver
from plugwatch.store import open_store
from plugwatch.testing import running_service
from tests.helpers import wait_for

COMBINED = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}


async def test_an_emulated_plug_answers_a_datagram_like_a_real_plug(emulator) -> None:
    """The encrypted JSON on UDP at the plug's port number, without the 4-byte length header."""
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="fridge", power=80.0)], udp=True)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, wire.encode_datagram(COMBINED), ("127.0.0.1", port))
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 2.0)
    got = wire.parse_answer(data)  # no header: the datagram is the encrypted JSON itself
    assert got["system"]["get_sysinfo"]["alias"] == "fridge"
    assert got["emeter"]["get_realtime"]["power_mw"] == 80_000


async def test_plugs_and_strip_outlets_read_through_one_socket(emulator) -> None:
    """Single plugs and the six outlets of a strip, all at once over UDP, each with its value."""
    plugs = [EmulatedPlug("HS110v1", power=12.5), EmulatedPlug("KP115", power=7.0),
             EmulatedPlug("HS300", power=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]
    ports = await emulator.start(plugs, udp=True, tcp=False)
    drivers = [KasaDriver("127.0.0.1", ports[0], transport="udp"),
               KasaDriver("127.0.0.1", ports[1], transport="udp")]
    drivers += [KasaDriver("127.0.0.1", ports[2], outlet=i, transport="udp") for i in range(6)]
    for _ in range(3):
        readings = await asyncio.gather(*(d.read(1.0) for d in drivers))
        assert [r.power_w for r in readings] == [12.5, 7.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    udp = drivers[0]._link
    assert udp is not None and all(d._link is udp for d in drivers)
    assert len(udp._socks) == 1  # type: ignore[union-attr]
    assert drivers[1].model == "KP115(EU)" and drivers[4].alias == plugs[2].outlets[2].alias
    for d in drivers:
        await d.close()


async def test_a_udp_plug_offline_is_silent_and_answers_again_on_its_port(emulator) -> None:
    """Offline, a UDP plug's port answers nothing (the read times out); garbage gets no answer
    either; back online, the same port answers the next read."""
    plugs = [EmulatedPlug("HS110v2", power=5.0), EmulatedPlug("HS110v2", power=6.0)]
    ports = await emulator.start(plugs, udp=True, tcp=False)
    driver = KasaDriver("127.0.0.1", ports[0], timeout=0.3, transport="udp")
    other = KasaDriver("127.0.0.1", ports[1], timeout=0.3, transport="udp")
    try:
        assert (await driver.read(0.0)).power_w == 5.0
        await emulator.set_online(plugs[0], False)
        with pytest.raises(DeviceTimeout):
            await driver.read(1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"\x00garbage", ("127.0.0.1", ports[1]))
        assert (await other.read(1.0)).power_w == 6.0
        await emulator.set_online(plugs[0], True)
        assert (await driver.read(2.0)).power_w == 5.0
    finally:
        await driver.close()
        await other.close()


class LossyPlug(asyncio.DatagramProtocol):
    """A UDP plug that drops the first `drop` datagrams of every request it is sent."""

    def __init__(self, drop: int) -> None:
        self.drop = drop
        self.plug = EmulatedPlug("HS110v2", power=33.0)
        self.received = 0
        self.transport: Any = None
        self._seen: dict[bytes, int] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1
        count = self._seen[data] = self._seen.get(data, 0) + 1
        if count <= self.drop:
            return
        self._seen[data] = 0  # answered: the next request of this kind is dropped again
        reply = answer(self.plug, wire.parse_answer(data))
        self.transport.sendto(wire.encode_datagram(reply), addr)


async def lossy(drop: int) -> tuple[Any, LossyPlug, int]:
    loop = asyncio.get_running_loop()
    transport, plug = await loop.create_datagram_endpoint(
        lambda: LossyPlug(drop), local_addr=("127.0.0.1", 0))
    return transport, plug, transport.get_extra_info("sockname")[1]


async def test_a_lost_datagram_is_sent_again_and_the_read_succeeds() -> None:
    """Every first datagram is lost: the retry after a third of the timeout gets the answer, and the
    sampler counts no failure (a loss alone never makes a plug unreachable)."""
    transport, _, port = await lossy(drop=1)
    got: list[Sample] = []
    driver = KasaDriver("127.0.0.1", port, timeout=0.4, transport="udp")
    sampler = Sampler([SampledPlug("p", driver, 0.5)], lambda name, s: got.append(s))
    sampler.start()
    try:
        await wait_for(lambda: len(got) >= 3, 5.0)
    finally:
        await sampler.drain(1.0)
        udp = driver._link
        await driver.close()
        transport.close()
    assert all(isinstance(s, Reading) and s.power_w == 33.0 for s in got), got
    assert sampler.stats.failures == 0
    assert udp is not None and udp.retries >= 3  # type: ignore[union-attr]


async def test_a_short_timeout_is_retried_in_time_behind_a_long_one() -> None:
    """Two plugs that lose every first datagram, a long timeout asked first: the plug with the
    short timeout is still retried after a third of its own timeout and read."""
    slow, _, slow_port = await lossy(drop=1)
    quick, _, quick_port = await lossy(drop=1)
    drivers = [KasaDriver("127.0.0.1", slow_port, timeout=1.5, transport="udp"),
               KasaDriver("127.0.0.1", quick_port, timeout=0.3, transport="udp")]
    try:
        readings = await asyncio.gather(*(d.read(0.0) for d in drivers))
    finally:
        for d in drivers:
            await d.close()
        slow.close()
        quick.close()
    assert [r.power_w for r in readings] == [33.0, 33.0]


async def test_a_plug_that_never_answers_fails_after_the_retry() -> None:
    """No answer to the datagram nor to its retry: a DeviceTimeout naming UDP, after the
    timeout, with exactly two datagrams sent."""
    transport, plug, port = await lossy(drop=10**9)
    driver = KasaDriver("127.0.0.1", port, timeout=0.3, transport="udp")
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        with pytest.raises(DeviceTimeout) as exc:
            await driver.read(0.0)
    finally:
        await driver.close()
        transport.close()
    assert 0.29 < loop.time() - start < 1.0
    assert str(exc.value) == (f"timeout after 0.3 s reading 127.0.0.1:{port} over UDP "
                              f"(no answer to 2 datagrams)")
    assert plug.received == 2


class EchoingPlug(asyncio.DatagramProtocol):
    """An emulated plug on UDP that answers its first sysinfo question twice, as a plug does
    when a slow first answer made the client send the question again."""

    def __init__(self) -> None:
        self.plug = EmulatedPlug("HS110v2", power=44.0)
        self.asked: list[set[str]] = []  # the modules of each request received
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.asked.append(set(wire.parse_answer(data)))
        out = answer_body(self.plug, data)
        for _ in range(2 if self.asked == [{"system"}] else 1):
            self.transport.sendto(out, addr)


async def test_a_duplicate_first_answer_is_a_stray_not_the_reading() -> None:
    """The second copy of the sysinfo answer arrives once the combined request is out: it lacks
    the emeter the request asked for, so it is counted as a stray and the reading is the
    combined request's own answer."""
    loop = asyncio.get_running_loop()
    transport, echoing = await loop.create_datagram_endpoint(
        EchoingPlug, local_addr=("127.0.0.1", 0))
    driver = KasaDriver("127.0.0.1", transport.get_extra_info("sockname")[1], transport="udp")
    try:
        first = await driver.read(1.0)
        second = await driver.read(2.0)
        udp = driver._link
    finally:
        await driver.close()
        transport.close()
    assert (first.power_w, second.power_w) == (44.0, 44.0)
    assert echoing.asked == [{"system"}, {"system", "emeter"}, {"system", "emeter"}]
    assert udp is not None and udp.strays == 1 and udp.retries == 0  # type: ignore[union-attr]


class BusyStrip(asyncio.DatagramProtocol):
    """An emulated HS300 on UDP that is busy for outlet 0's first reading: it answers that
    request only once it is asked again, and then answers both copies at once."""

    def __init__(self) -> None:
        self.plug = EmulatedPlug("HS300", power=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        self.held: Any = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        request = wire.parse_answer(data)
        first_child = self.plug.outlets[0].child_id
        if "emeter" in request and request["context"]["child_ids"] == [first_child]:
            if self.held is None:
                self.held = data
                return
            if self.held != b"":
                self.transport.sendto(answer_body(self.plug, self.held), addr)
                self.held = b""
        self.transport.sendto(answer_body(self.plug, data), addr)


async def test_the_second_answer_to_a_retried_outlet_is_not_the_next_outlets() -> None:
    """Outlet 0's reading is retried and then answered twice; outlet 1's request waits its turn
    behind it: the second copy (outlet 0's meter) is not taken for outlet 1's answer."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(BusyStrip, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    drivers = [KasaDriver("127.0.0.1", port, outlet=i, timeout=0.6, transport="udp")
               for i in range(2)]
    try:
        readings = await asyncio.gather(*(d.read(1.0) for d in drivers))
        udp = drivers[0]._link
    finally:
        for d in drivers:
            await d.close()
        transport.close()
    assert [r.power_w for r in readings] == [1.0, 2.0]
    assert udp is not None and udp.retries == 1 and udp.strays == 1  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def plugs_in_a_thread(n: int, power: float) -> AsyncIterator[list[KasaDriver]]:
    """n emulated UDP plugs served by an event loop in a thread of their own (a test may block
    its own loop: these go on answering), and a UDP driver for each, after first contact."""
    ready: list[list[int]] = []
    stop = threading.Event()

    async def serve() -> None:
        emulator = Emulator()
        plugs = [EmulatedPlug("HS110v2", power=power) for _ in range(n)]
        ready.append(await emulator.start(plugs, udp=True, tcp=False))
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await emulator.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    drivers: list[KasaDriver] = []
    try:
        await wait_for(lambda: bool(ready), 10.0)
        drivers = [KasaDriver("127.0.0.1", p, timeout=1.5, transport="udp") for p in ready[0]]
        await asyncio.gather(*(d.read(0.0) for d in drivers))
        yield drivers
    finally:
        for d in drivers:
            await d.close()
        stop.set()
        thread.join(10.0)


async def test_answers_waiting_while_the_loop_was_busy_are_not_retried() -> None:
    """1,500 plugs answer while the client's loop is blocked past the retry time: the retry sweep
    first takes every answer waiting (not one callback's worth), so none is sent again."""
    async with plugs_in_a_thread(1500, 7.0) as drivers:
        udp = drivers[0]._link
        assert udp is not None
        retries = udp.retries  # type: ignore[union-attr]
        reads = asyncio.gather(*(d.read(1.0) for d in drivers))
        await asyncio.sleep(0)  # every datagram sent ...
        time.sleep(1.0)  # ... and the loop blocked past the retry (at 0.5 s)
        assert {r.power_w for r in await reads} == {7.0}
        assert udp.retries == retries  # type: ignore[union-attr]


async def test_answers_waiting_while_the_loop_was_busy_are_not_timeouts() -> None:
    """1,500 answers came while the loop was busy, and the reads' timeouts are found before it
    polls the socket again (as the sampler's sweep does): each expiry first takes the answers
    waiting, so every read ends with its reading, none with a timeout."""
    async with plugs_in_a_thread(1500, 8.0) as drivers:
        got: list[Any] = []
        for d in drivers:
            d.begin(1.0, got.append)
        time.sleep(0.5)  # the answers arrive while the loop is busy ...
        for d in drivers:
            d.expire()  # ... and every read is found due before the loop runs again
        failed = [r for r in got if not isinstance(r, Reading)]
        assert not failed, f"{len(failed)} timed out, as {failed[0]}"
        assert len(got) == 1500 and {r.power_w for r in got} == {8.0}


async def test_the_service_stores_readings_of_udp_plugs(emulator, tmp_path) -> None:
    """`transport: udp` in the config: the real service reads over UDP and stores readings,
    and a hung UDP plug becomes failures with their reason."""
    plugs = [EmulatedPlug("HS110v2", power=60.0 + i) for i in range(4)]
    plugs[3].hung = True
    ports = await emulator.start(plugs, udp=True, tcp=False)
    config = config_from_dict({
        "database": f"sqlite:///{tmp_path}/udp.db",
        "defaults": {"interval": 0.2, "timeout": 0.15},
        "plugs": [{"name": f"u{i}", "host": f"127.0.0.1:{p}", "transport": "udp"}
                  for i, p in enumerate(ports)],
    })
    seen: list[tuple[str, Sample]] = []
    async with running_service(config) as service:
        original = service.sampler.on_sample
        service.sampler.on_sample = lambda n, s: (seen.append((n, s)), original(n, s))
        await wait_for(lambda: sum(n == "u1" for n, _ in seen) >= 4
                       and sum(n == "u3" for n, _ in seen) >= 2, 15.0)
    store = open_store(config.database)
    try:
        assert len(store.readings("u1")) >= 4
        assert {r.power_w for r in store.readings("u2")} == {62.0}
    finally:
        store.close()
    failures = [s for n, s in seen if n == "u3"]
    assert failures and all(isinstance(s, ReadFailure) and "over UDP" in s.reason
                            for s in failures)
