"""Shelly and Tasmota over real HTTP: every bad answer is one line naming the plug, credentials
work as each family expects, and one session serves every device."""

from __future__ import annotations

import time

import pytest

from plugwatch.errors import BadAnswer, DeviceError
from tests.families import HTTP_FAMILIES, Family, ids

http_families = pytest.mark.parametrize("family", HTTP_FAMILIES, ids=ids(HTTP_FAMILIES))


async def read_error(family: Family, fault: str) -> str:
    """The message of the DeviceError a read of a device answering with `fault` raises."""
    device = await family.start(100.0)
    device.set_fault(fault)
    driver = device.driver(timeout=0.5)
    try:
        with pytest.raises(DeviceError) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    return str(info.value).replace(str(device.port), "P")


@http_families
@pytest.mark.parametrize(("fault", "expected"), [
    # bytes that are no JSON (the first ones are shown, so a user sees what answered)
    ("garbage", "bad answer from 127.0.0.1:P: not JSON (not UTF-8 text; starts "),
    ("401", "127.0.0.1:P refused the credentials (HTTP 401): set the plug's password (and "
            "username) in plugwatch.yaml"),
    ("500", "bad answer from 127.0.0.1:P: HTTP 500 Internal Server Error"),
])
async def test_each_bad_answer_is_one_line(family: Family, fault: str, expected: str) -> None:
    message = await read_error(family, fault)
    assert message.startswith(expected) and "\n" not in message


@pytest.mark.parametrize(("name", "expected"), [
    ("shelly2", "bad answer from 127.0.0.1:P: switch status.apower is \"lots\", not a number"),
    ("shelly-pm", "bad answer from 127.0.0.1:P: pm1 status.apower is \"lots\", not a number"),
    ("shelly1", "bad answer from 127.0.0.1:P: /status has no meters: not a metering Shelly?"),
    ("tasmota", "bad answer from 127.0.0.1:P: ENERGY.Power is {\"now\": 5}, not a number"),
])
async def test_a_wrong_shape_names_the_field(name: str, expected: str) -> None:
    [family] = [f for f in HTTP_FAMILIES if f.name == name]
    assert await read_error(family, "shape") == expected


@http_families
async def test_the_right_password_reads_and_a_wrong_one_is_one_line(family: Family) -> None:
    """Digest (Gen2), basic (Gen1) and query arguments (Tasmota) with the right password read;
    a wrong password is the 401 line; the password appears in no message."""
    device = await family.start(75.0, password="s3cret-pw")
    good = device.driver(password="s3cret-pw")
    bad = device.driver(password="wrong-pw")
    try:
        reading = await good.read(time.time())
        with pytest.raises(BadAnswer) as info:
            await bad.read(time.time())
    finally:
        await good.close()
        await bad.close()
        await device.stop()
    assert reading.power_w == pytest.approx(75.0, abs=0.5)
    assert "refused the credentials" in str(info.value)
    assert "s3cret" not in str(info.value) and "wrong-pw" not in str(info.value)


@pytest.mark.parametrize("name", ["shelly2", "shelly1"])
async def test_a_protected_shelly_without_password_says_so(name: str) -> None:
    """/shelly tells that the device wants a password: the line says where to put it."""
    [family] = [f for f in HTTP_FAMILIES if f.name == name]
    device = await family.start(10.0, password="pw")
    driver = device.driver()
    try:
        with pytest.raises(BadAnswer, match=r"127\.0\.0\.1:\d+ is password-protected: set the "
                                            r"plug's password in plugwatch.yaml"):
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()


async def test_a_channel_the_device_lacks_is_one_line() -> None:
    """channel 3 of a one-switch Shelly Gen2 names both components it looked for."""
    [family] = [f for f in HTTP_FAMILIES if f.name == "shelly2"]
    device = await family.start(10.0)
    driver = device.driver(channel=3)
    try:
        with pytest.raises(BadAnswer) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await device.stop()
    assert str(info.value) == (f"127.0.0.1:{device.port} channel 3: the device has neither "
                               "switch:3 nor pm1:3 (check the plug's channel)")


async def test_many_devices_share_one_session_and_reuse_connections() -> None:
    """Ten devices read three times each: one client session, one connection per device."""
    from plugwatch.emulator.http import EmulatedHttpDevice
    from plugwatch.emulator.http_server import HttpEmulator
    from plugwatch.sources import http
    from plugwatch.sources.shelly import ShellyDriver

    devices = [EmulatedHttpDevice("shelly2", power=float(i)) for i in range(10)]
    emulator = HttpEmulator()
    ports = await emulator.start(devices)
    drivers = [ShellyDriver("127.0.0.1", port) for port in ports]
    try:
        for _ in range(3):
            readings = [await d.read(time.time()) for d in drivers]
        sessions = {id(d.http._shared) for d in drivers}
        [shared] = [d.http._shared for d in drivers[:1]]
        assert shared is not None
        connector = shared.session.connector
        assert connector is not None
        opened = sum(len(conns) for conns in connector._conns.values())
    finally:
        for d in drivers:
            await d.close()
        await emulator.stop()
    assert [r.power_w for r in readings] == [float(i) for i in range(10)]
    assert len(sessions) == 1 and opened == 10
    assert not http._SESSIONS  # the last device closed the session


@http_families
@pytest.mark.parametrize(("fault", "expected"), [
    ("nan", "bad reading from 127.0.0.1:P: power nan is not a finite number"),
    ("inf", "bad reading from 127.0.0.1:P: power inf is not a finite number"),
    ("negative", "bad reading from 127.0.0.1:P: power -50 W is outside 0 .. 4000 W"),
])
async def test_an_impossible_power_is_one_line(family: Family, fault: str, expected: str) -> None:
    """NaN, infinite or negative watts (the driver reports what the plug said) are turned into
    one failure line at the source boundary (sources.validate), as the service does."""
    from plugwatch.model import ReadFailure
    from plugwatch.sources.validate import checked

    device = await family.start(100.0)
    device.set_fault(fault)
    driver = device.driver()
    try:
        sample = checked(await driver.read(time.time()), driver.where)
    finally:
        await driver.close()
        await device.stop()
    assert isinstance(sample, ReadFailure)
    assert sample.reason.replace(str(device.port), "P").startswith(expected)
