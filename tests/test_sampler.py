"""The sampler reads emulated plugs over real TCP on APScheduler slots; hung plugs delay nobody."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.model import ReadFailure, Reading, Sample
from plugwatch.service.sampler import SampledPlug, Sampler
from plugwatch.sources.kasa.driver import KasaDriver


async def sample_for(plugs: list[SampledPlug], seconds: float, slots: int = 3) -> tuple[
    Sampler, dict[str, list[Sample]]
]:
    """Run a sampler over `plugs` for `seconds`; return it and the samples per plug."""
    got: dict[str, list[Sample]] = defaultdict(list)
    sampler = Sampler(plugs, lambda name, s: got[name].append(s), slots_per_interval=slots)
    scheduler = AsyncIOScheduler()
    sampler.schedule(scheduler)
    scheduler.start()
    await asyncio.sleep(seconds)
    scheduler.shutdown(wait=False)
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
    scheduler = AsyncIOScheduler()
    sampler.schedule(scheduler)
    scheduler.start()
    try:
        await asyncio.sleep(0.35)
        await emulator.set_online(plug, False)
        await asyncio.sleep(0.4)
        await emulator.set_online(plug, True)
        await asyncio.sleep(0.4)
    finally:
        scheduler.shutdown(wait=False)
        await sampler.drain(1.0)
        await sampler.plugs[0].driver.close()
        await emulator.stop()
    kinds = [type(s).__name__ for s in got["p"]]
    first_failure = kinds.index("ReadFailure")
    assert "Reading" in kinds[:first_failure]
    assert "Reading" in kinds[kinds.index("ReadFailure", first_failure):]
    assert kinds[-1] == "Reading"
