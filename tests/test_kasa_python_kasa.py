"""python-kasa 0.12, a real client nobody here wrote, reads the emulator and sees its values.

Emulated time is driven by a hand-set clock, so the energy counters are exact, not racing time.
"""

from __future__ import annotations

import pytest
from kasa import Device, DeviceConfig, Module

from plugwatch.emulator import EmulatedPlug
from tests.helpers import Clock


async def connect(port: int) -> Device:
    dev = await Device.connect(config=DeviceConfig("127.0.0.1", port_override=port, timeout=5))
    await dev.update()
    return dev


@pytest.mark.parametrize(
    ("model", "energy_kwh"),
    [("HS110v2", 1.234), ("KP115", 1.234), ("HS110v1", 1.2345)],
    ids=["v2 ints", "KP115", "v1 floats"],
)
async def test_python_kasa_reads_a_single_plug(emulator, model, energy_kwh) -> None:
    """Power, voltage, current, relay and the energy total equal what the emulator serves."""
    clock = Clock()
    plug = EmulatedPlug(model, alias="washer", power=1234.5, clock=clock)
    [port] = await emulator.start([plug])
    clock.now = 3600.0  # one emulated hour at 1234.5 W
    dev = await connect(port)
    try:
        energy = dev.modules[Module.Energy]
        assert dev.alias == "washer" and dev.is_on is True
        assert dev.model == ("KP115" if model == "KP115" else "HS110")
        assert energy.current_consumption == pytest.approx(1234.5)
        assert energy.voltage == pytest.approx(230.0)
        assert energy.current == pytest.approx(1234.5 / 230, abs=0.001)
        assert energy.consumption_total == pytest.approx(energy_kwh)
        assert plug.energy_wh == pytest.approx(1234.5)

        plug.relay_on = False
        await dev.update()
        assert dev.is_on is False and energy.current_consumption == 0.0
    finally:
        await dev.disconnect()


async def test_python_kasa_switches_the_emulated_relay(emulator) -> None:
    plug = EmulatedPlug("HS110v2", power=60.0)
    [port] = await emulator.start([plug])
    dev = await connect(port)
    try:
        await dev.turn_off()
        assert plug.relay_on is False
        await dev.turn_on()
        assert plug.relay_on is True
    finally:
        await dev.disconnect()


async def test_python_kasa_reads_every_strip_outlet(emulator) -> None:
    clock = Clock()
    strip = EmulatedPlug("HS300", alias="desk", power=[10.0, 20.0, 30.0, 0.0, 50.0, 60.0],
                         clock=clock)
    strip.outlets[1].relay_on = False
    [port] = await emulator.start([strip])
    clock.now = 7200.0
    dev = await connect(port)
    try:
        assert dev.alias == "desk" and len(dev.children) == 6
        powers = [c.modules[Module.Energy].current_consumption for c in dev.children]
        assert powers == pytest.approx([10.0, 0.0, 30.0, 0.0, 50.0, 60.0])
        assert [c.is_on for c in dev.children] == [True, False, True, True, True, True]
        assert [c.alias for c in dev.children] == [o.alias for o in strip.outlets]
        totals = [c.modules[Module.Energy].consumption_total for c in dev.children]
        assert totals == pytest.approx([0.02, 0.0, 0.06, 0.0, 0.1, 0.12])
    finally:
        await dev.disconnect()
