"""The contract every polled driver keeps, run against each family's emulator over its real
protocol (Kasa TCP, Shelly Gen2 / PM / Gen1 HTTP, Tasmota HTTP, Tapo / KP125M / KLAP Kasa over
KLAP through python-kasa)."""

from __future__ import annotations

import time

import pytest

from plugwatch.config import config_from_dict
from plugwatch.errors import BadAnswer, DeviceTimeout, DeviceUnreachable
from tests.families import FAMILIES, Family, ids

pytestmark = pytest.mark.parametrize("family", FAMILIES, ids=ids(FAMILIES))


async def test_a_reading_has_power_relay_and_the_plugs_own_counter(family: Family) -> None:
    """A steady 120 W load: power as measured, relay closed, a counter that grows."""
    device = await family.start(120.0, speed=3600.0)
    driver = device.driver()
    try:
        first = await driver.read(time.time())
        time.sleep(0.05)
        second = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert first.power_w == pytest.approx(120.0, abs=0.5)
    assert first.relay_on is (True if family.has_relay else None)
    assert second.energy_kwh is not None and first.energy_kwh is not None
    assert second.energy_kwh > first.energy_kwh


async def test_relay_off_reads_as_relay_off(family: Family) -> None:
    """An open relay is reported as such (0 W); a meter without a relay reports no relay."""
    device = await family.start(80.0)
    device.outlet.relay_on = False
    driver = device.driver()
    try:
        reading = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert reading.power_w == 0.0
    assert reading.relay_on is (False if family.has_relay else None)


async def test_a_counter_reset_is_reported_as_it_is(family: Family) -> None:
    """The plug's counter restarting at 0 (a reboot, a reset) shows as a drop, not smoothed."""
    device = await family.start(2000.0, speed=3600.0)
    driver = device.driver()
    try:
        time.sleep(0.1)
        before = await driver.read(time.time())
        device.device.reset_energy() if hasattr(device.device, "reset_energy") else \
            device.outlet.reset_energy()
        after = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert before.energy_kwh is not None and after.energy_kwh is not None
    assert before.energy_kwh > 0.1 and after.energy_kwh < 0.05


async def test_a_hung_plug_is_one_timeout_line(family: Family) -> None:
    """A plug that accepts the request and never answers: DeviceTimeout after the timeout."""
    device = await family.start(50.0)
    device.set_fault("hung")
    driver = device.driver(timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(DeviceTimeout) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert time.monotonic() - started < 1.0
    assert str(info.value).startswith(f"timeout after 0.3 s reading {device.where}")


async def test_an_offline_plug_is_unreachable_and_comes_back(family: Family) -> None:
    """Connections refused: DeviceUnreachable naming host:port; back online, readings again."""
    device = await family.start(50.0)
    driver = device.driver()
    try:
        await driver.read(time.time())
        await device.set_online(False)
        with pytest.raises(DeviceUnreachable) as info:
            await driver.read(time.time())
        await device.set_online(True)
        back = await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert device.where in str(info.value)
    assert "\n" not in str(info.value)
    assert back.power_w == pytest.approx(50.0, abs=0.5)


async def test_a_wrong_driver_for_the_device_is_one_line(family: Family) -> None:
    """Pointing another family's driver at this device gives one BadAnswer line, no traceback."""
    device = await family.start(50.0)
    other = "tasmota" if family.driver == "shelly" else "shelly"
    from plugwatch.sources import make_driver

    config = config_from_dict({"defaults": {"timeout": 0.5}, "plugs": [
        {"name": "p", "driver": other, "host": device.where}]})
    driver = make_driver(config.plugs[0])
    try:
        with pytest.raises((BadAnswer, DeviceUnreachable)) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert device.where in str(info.value) and "\n" not in str(info.value)
