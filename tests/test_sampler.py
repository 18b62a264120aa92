"""The sampler reads emulated plugs over real TCP in phase-shifted slots; hung plugs delay none."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import ReadFailure, Reading, Sample
from plugwatch.service import sampler as sampler_module
from plugwatch.service.sampler import SampledPlug, Sampler
from plugwatch.service.sampling_stats import KeepUp, SamplerStats
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.driver import KasaDriver
from plugwatch.testing import emulated_config, running_service
from tests.helpers import wait_for


async def sample_for(plugs: list[SampledPlug], seconds: float, slots: int = 3) -> tuple[
    Sampler, dict[str, list[Sample]]
]:
    """Run a sampler over `plugs` for `seconds`; return it and the samples per plug."""
    got: dict[str, list[Sample]] = defaultdict(list)
    sampler = Sampler(plugs, lambda name, s: got[name].append(s), slots_per_interval=slots)
    sampler.start()
    await asyncio.sleep(seconds)
    await sampler.drain(2.0)
    for plug in plugs:
        await plug.driver.close()
    return sampler, got


async def test_every_plug_is_read_on_its_interval() -> None:
    """Five plugs at 0.2 s give about five readings per second each, with the emulated power."""
    emulator = Emulator()
    plugs = [EmulatedPlug("HS110v2", power=100.0 + i) for i in range(5)]
    ports = await emulator.start(plugs)
    try:
        sampled = [SampledPlug(f"p{i}", KasaDriver("127.0.0.1", port), 0.2)
                   for i, port in enumerate(ports)]
        sampler, got = await sample_for(sampled, 1.05)
    finally:
        await emulator.stop()
    for i in range(5):
        readings = got[f"p{i}"]
        assert 3 <= len(readings) <= 6, readings
        assert all(isinstance(r, Reading) and abs(r.power_w - (100 + i)) < 0.01 for r in readings)
    assert sampler.stats.failures == 0
    assert sampler.stats.lateness_percentile(99) < 0.25


async def test_a_hung_plug_does_not_delay_the_others() -> None:
    """A plug that never answers times out and skips its own ticks; the others keep their pace."""
    emulator = Emulator()
    plugs = [EmulatedPlug("HS110v2", power=50.0) for _ in range(4)]
    plugs[0].hung = True
    ports = await emulator.start(plugs)
    try:
        sampled = [SampledPlug(f"p{i}", KasaDriver("127.0.0.1", port, timeout=0.5), 0.2)
                   for i, port in enumerate(ports)]
        sampler, got = await sample_for(sampled, 1.25, slots=2)
    finally:
        await emulator.stop()
    hung = got["p0"]
    assert hung and all(isinstance(s, ReadFailure) and "timeout" in s.reason for s in hung)
    assert sampler.stats.skipped >= 2  # ticks of p0 while its read was in flight
    for name in ("p1", "p2", "p3"):
        assert len(got[name]) >= 4 and all(isinstance(s, Reading) for s in got[name])
    assert sampler.stats.lateness_percentile(99) < 0.25


async def test_an_offline_plug_gives_failures_then_readings_again() -> None:
    """While its listener is closed a plug yields ReadFailures; back online it reads again."""
    emulator = Emulator()
    plug = EmulatedPlug("HS110v2", power=20.0)
    [port] = await emulator.start([plug])
    got: dict[str, list[Sample]] = defaultdict(list)
    sampler = Sampler([SampledPlug("p", KasaDriver("127.0.0.1", port, timeout=0.5), 0.1)],
                      lambda name, s: got[name].append(s))
    sampler.start()
    try:
        await asyncio.sleep(0.35)
        await emulator.set_online(plug, False)
        await asyncio.sleep(0.4)
        await emulator.set_online(plug, True)
        await asyncio.sleep(0.4)
    finally:
        await sampler.drain(1.0)
        await sampler.plugs[0].driver.close()
        await emulator.stop()
    kinds = [type(s).__name__ for s in got["p"]]
    first_failure = kinds.index("ReadFailure")
    assert "Reading" in kinds[:first_failure]
    assert "Reading" in kinds[kinds.index("ReadFailure", first_failure):]
    assert kinds[-1] == "Reading"


@contextlib.contextmanager
def emulated_elsewhere(plugs: list[EmulatedPlug]) -> Iterator[list[int]]:
    """The plugs served from a thread with its own event loop: they answer while ours stalls."""
    loop = asyncio.new_event_loop()
    emulator = Emulator()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(emulator.start(plugs), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_a_stalled_loop_skips_ticks_but_times_nothing_out() -> None:
    """Our loop stalls for 2.5 s (25 intervals, 2.5 timeouts) right after a tick, while the
    plugs answer: the missed ticks are skipped and counted, the answers that came meanwhile are
    taken, late, and no connection is torn down."""
    plugs = [EmulatedPlug("HS110v2", power=10.0 + i) for i in range(6)]
    got: dict[str, list[Sample]] = defaultdict(list)
    stall = {"at": time.monotonic() + 0.5, "done": False}

    def on_sample(name: str, sample: Sample) -> None:
        got[name].append(sample)
        if name == "p0" and not stall["done"] and time.monotonic() >= stall["at"]:
            stall["done"] = True  # p2, p4 of p0's slot are in flight now
            time.sleep(2.5)  # this process is busy elsewhere: none of our callbacks runs

    with emulated_elsewhere(plugs) as ports:
        drivers = [KasaDriver("127.0.0.1", port, timeout=1.0) for port in ports]
        sampler = Sampler([SampledPlug(f"p{i}", d, 0.1) for i, d in enumerate(drivers)],
                          on_sample, slots_per_interval=2)
        sampler.start()
        try:
            await asyncio.sleep(0.45)
            sockets = [d._link._sock for d in drivers]  # type: ignore[union-attr]
            await wait_for(lambda: stall["done"], 6.0)
            before = sum(len(v) for v in got.values())
            await asyncio.sleep(0.5)
            after = sum(len(v) for v in got.values())
            assert [d._link._sock for d in drivers] == sockets  # type: ignore[union-attr]
        finally:
            await sampler.drain(1.0)
            for d in drivers:
                await d.close()
    assert sampler.stats.failures == 0
    assert all(isinstance(s, Reading) for samples in got.values() for s in samples)
    assert sampler.stats.behind >= 6 * 20  # ~24 ticks of each plug fell in the stall
    assert after - before >= 6 * 3  # and sampling went on afterwards
    assert sampler.stats.done_lateness.total == sampler.stats.done
    # the reads of p0's slot in flight during the stall were taken, 2.5 s late
    assert sum(sampler.stats.done_lateness.counts[2400:]) >= 2


async def test_each_failure_reaches_the_callback_with_its_reason() -> None:
    """Garbage, a lying length and a hang become ReadFailures carrying the driver's one-line
    reason (the service logs it when it changes), never a bare 'failed'."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            body = bytes(range(1, 9))
            writer.write(wire.HEADER.pack(len(body)) + body if data else b"")

    async def lying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            writer.write(b"\xff\xff\xff\xff")

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass

    servers = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (garbage, lying, hang)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    got: dict[str, list[Sample]] = defaultdict(list)
    drivers = [KasaDriver("127.0.0.1", port, timeout=0.2) for port in ports]
    sampler = Sampler([SampledPlug(n, d, 0.1) for n, d in zip("glh", drivers, strict=True)],
                      lambda name, s: got[name].append(s))
    sampler.start()
    try:
        await asyncio.sleep(0.8)
    finally:
        await sampler.drain(1.0)
        for d in drivers:
            await d.close()
        for s in servers:
            s.close()
    where = [f"127.0.0.1:{port}" for port in ports]
    reasons = {name: {s.reason for s in got[name] if isinstance(s, ReadFailure)}
               for name in "glh"}
    assert reasons == {
        "g": {f"bad answer from {where[0]}: answer does not decrypt to JSON (first bytes "
              f"01 02 03 04 05 06 07 08): not a Kasa plug?"},
        "l": {f"bad answer from {where[1]}: length header says 4294967295 bytes, more than the "
              f"65536 allowed"},
        "h": {f"timeout after 0.2 s reading {where[2]}"},
    }
    assert all(len(got[name]) >= 2 for name in "glh")


def test_keep_up_warns_once_when_ticks_run_late_and_reads_are_skipped() -> None:
    """Skipped reads while the loop runs its ticks late warn once, with the sustained rate and
    the share of a core the process got (a starved process cannot keep up either); skipped
    reads of hung plugs, whose ticks run on time, never do."""
    stats = SamplerStats()
    clock = {"wall": 0.0, "cpu": 0.0}
    keep_up = KeepUp(stats, lambda: 1000.0, 1000, cpu=lambda: clock["cpu"],
                     wall=lambda: clock["wall"])

    def window(cpu: float, done: int, skipped: int, lag_s: float) -> str | None:
        clock["wall"] += 10.0
        clock["cpu"] += cpu
        stats.done += done
        stats.skipped += skipped
        stats.tick_lag.add(lag_s, 100)  # 10 slots, ten ticks a second each
        return keep_up.check()

    assert window(cpu=2.0, done=8000, skipped=2000, lag_s=0.004) is None  # hung plugs
    assert window(cpu=9.9, done=9950, skipped=50, lag_s=0.3) is None  # 0.5 % skipped
    assert window(cpu=9.9, done=9000, skipped=1000, lag_s=0.09) is None  # late, within bounds
    warning = window(cpu=4.9, done=5000, skipped=5000, lag_s=0.35)
    assert warning is not None
    assert warning.startswith("sampling cannot keep up: 1000 plugs plan 1000 reads/s, this "
                              "process sustains 500 reads/s at 49 % of a core (5000 reads "
                              "skipped in the last 10 s)")
    assert window(cpu=10.0, done=7000, skipped=3000, lag_s=0.5) is None  # once


async def _service_warnings(emulator: Emulator, plugs: list[EmulatedPlug], interval_s: float,
                            tmp_path: object, caplog: pytest.LogCaptureFixture,
                            monkeypatch: pytest.MonkeyPatch, per_sample_s: float = 0.0
                            ) -> list[str]:
    """Run the real service over `plugs` for three 1 s keep-up windows, each sample costing the
    loop `per_sample_s` more (a slow machine); the service's keep-up warnings."""
    monkeypatch.setattr(sampler_module, "WATCH_S", 1.0)
    ports = await emulator.start(plugs)
    config = emulated_config({f"p{i}": port for i, port in enumerate(ports)},
                             f"sqlite:///{tmp_path}/t.db", interval_s=interval_s, timeout_s=0.5)

    def slow(_plug: str, _sample: Sample) -> None:
        time.sleep(per_sample_s)

    with caplog.at_level(logging.WARNING, logger="plugwatch.service.sampler"):
        async with running_service(config, sample_listeners=[slow] if per_sample_s else []
                                   ) as service:
            await asyncio.wait_for(service.started.wait(), 30)
            await asyncio.sleep(3.5)
    return [r.getMessage() for r in caplog.records if "keep up" in r.getMessage()]


async def test_an_overloaded_service_warns_once_with_the_rate_it_sustains(
        emulator: Emulator, tmp_path: object, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """100 plugs every 50 ms (2,000 reads/s) when each sample holds the loop 5 ms is ten times
    what the process can do: the service says so once, with the rate it does sustain."""
    plugs = [EmulatedPlug("HS110v2", power=10.0) for _ in range(100)]
    warnings = await _service_warnings(emulator, plugs, 0.05, tmp_path, caplog, monkeypatch,
                                       per_sample_s=0.005)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("sampling cannot keep up: 100 plugs plan 2000 reads/s, this "
                                  "process sustains ")
    sustained = int(warnings[0].split("sustains ")[1].split()[0])
    assert 0 < sustained < 1000
    assert "use `plugwatch run --workers K`" in warnings[0]


async def test_hung_plugs_skip_their_ticks_without_a_keep_up_warning(
        emulator: Emulator, tmp_path: object, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugs that never answer skip nine ticks in ten (interval 50 ms, timeout 0.5 s) while the
    process idles: that is no reason to say the process cannot keep up."""
    plugs = [EmulatedPlug("HS110v2", power=10.0) for _ in range(20)]
    for plug in plugs:
        plug.hung = True
    assert await _service_warnings(emulator, plugs, 0.05, tmp_path, caplog, monkeypatch) == []
