"""Tapo and KLAP-firmware Kasa plugs through python-kasa, against real devices' dumps served by
plugwatch's KLAP emulator over real HTTP and UDP: python-kasa's own client reads them as the
devices, the driver reads realtime energy only, a refused login is one line naming the device and
its firmware, and the connection parameters are remembered in the database (no secret in it)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from plugwatch.config import config_from_dict
from plugwatch.emulator.klap_server import KlapEmulator
from plugwatch.emulator.tapo import EmulatedKlapKasa, EmulatedTapo
from plugwatch.errors import BadAnswer, DeviceError
from plugwatch.model import ReadFailure, Reading
from plugwatch.sources.pykasa import PyKasaDriver
from plugwatch.testing import running_service
from tests.families import DATA
from tests.helpers import wait_for

USER, PASSWORD = "me@example.com", "s3cret-tapo"
FIXTURES = ["P110(UK)_1.0_1.3.0.json", "KP125M(US)_1.0_1.2.3.json"]


def dump(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


async def serve(device: Any, discovery: bool = True) -> tuple[KlapEmulator, str, int]:
    emulator = KlapEmulator()
    [port] = await emulator.start([device], discovery=discovery)
    return emulator, emulator.hosts[0], port


@pytest.mark.parametrize("fixture", FIXTURES)
async def test_python_kasa_itself_reads_the_emulated_dump_as_that_device(fixture: str) -> None:
    """The reference client (discovery on UDP 20002, KLAP handshake, SMART requests) sees the
    recorded model, firmware and the emulated alias, relay and power."""
    from kasa import Credentials, Discover, Module

    device = EmulatedTapo(dump(fixture), alias="washer", power=512.0, username=USER,
                          password=PASSWORD)
    emulator, host, _ = await serve(device)
    try:
        dev = await Discover.discover_single(host, credentials=Credentials(USER, PASSWORD),
                                             discovery_timeout=3)
        assert dev is not None
        await dev.update()
        info = dump(fixture)["get_device_info"]
        assert (dev.alias, dev.model, dev.is_on) == ("washer", info["model"], True)
        assert dev.hw_info["sw_ver"] == info["fw_ver"]
        if "get_emeter_data" in dump(fixture):  # python-kasa needs it from energy_monitoring v2
            assert dev.modules[Module.Energy].current_consumption == pytest.approx(512.0)
        device.outlets[0].relay_on = False
        await dev.update()
        assert dev.is_on is False
        await dev.disconnect()
    finally:
        await emulator.stop()


@pytest.mark.parametrize(("fixture", "voltage"), [(FIXTURES[0], None), (FIXTURES[1], 230.0)])
async def test_the_driver_reads_realtime_energy_in_one_request(fixture: str,
                                                               voltage: float | None) -> None:
    """P110 1.3.0 answers get_energy_usage (power, the month's Wh); KP125M also get_emeter_data
    (voltage and current too). After first contact each read is one KLAP request and the
    session is reused (one handshake)."""
    device = EmulatedTapo(dump(fixture), power=1234.5, speed=3600.0, username=USER,
                          password=PASSWORD)
    emulator, host, port = await serve(device)
    driver = PyKasaDriver(host, port, USER, PASSWORD, timeout=2.0)
    asked: list[dict[str, Any]] = []
    answer = device.answer
    try:
        await driver.read(time.time())
        device.answer = lambda request: asked.append(request) or answer(request)  # type: ignore
        readings = [await driver.read(time.time()) for _ in range(3)]
    finally:
        await driver.close()
        await emulator.stop()
    model = dump(fixture)["get_device_info"]["model"]
    assert (driver.model, driver.firmware) == (model, dump(fixture)["get_device_info"]["fw_ver"])
    assert [r.power_w for r in readings] == [1234.5] * 3
    assert all(r.relay_on is True for r in readings)
    assert readings[0].voltage_v == voltage
    energies = [r.energy_kwh for r in readings]
    assert energies == sorted(energies) and energies[0] is not None and energies[0] > 0
    assert len(asked) == 3 and device.account.handshakes == 1
    methods = {r["method"] for r in asked[0]["params"]["requests"]}
    assert methods == {"get_device_info",
                       "get_emeter_data" if voltage else "get_energy_usage"}


async def test_a_klap_kasa_plug_reads_like_the_native_one() -> None:
    """Legacy commands inside KLAP login v1 (an HS110 on new firmware): sysinfo + realtime."""
    from plugwatch.emulator import EmulatedPlug

    device = EmulatedKlapKasa(EmulatedPlug("HS110v2", power=60.0), username=USER,
                              password=PASSWORD)
    emulator, host, port = await serve(device)
    driver = PyKasaDriver(host, port, USER, PASSWORD)
    try:
        reading = await driver.read(time.time())
    finally:
        await driver.close()
        await emulator.stop()
    assert (reading.power_w, reading.relay_on, reading.voltage_v) == (60.0, True, 230.0)
    assert driver.scheme == "KLAP login v1" and driver.model == "HS110(EU)"


async def test_a_klap_kasa_plug_without_a_meter_is_one_line() -> None:
    """python-kasa's HS100(UK) 4.1 dump (KLAP firmware, no energy meter)."""
    device = EmulatedKlapKasa(dump("HS100(UK)_4.1_1.1.0.json"), username="", password="")
    emulator, host, port = await serve(device)
    driver = PyKasaDriver(host, port)
    try:
        with pytest.raises(BadAnswer) as info:
            await driver.read(time.time())
    finally:
        await driver.close()
        await emulator.stop()
    assert str(info.value) == (f"{host}:{port}: the HS100(UK) has no energy meter "
                               "(feature 'TIM')")


async def test_a_refused_login_is_one_line_and_not_retried_at_once() -> None:
    """The line names the device, its model, firmware and login scheme, never the password;
    the next reads repeat it without logging in again (Tapo locks out repeated failures)."""
    device = EmulatedTapo(dump(FIXTURES[0]), username=USER, password=PASSWORD)
    emulator, host, port = await serve(device)
    driver = PyKasaDriver(host, port, USER, "wrong-password")
    try:
        with pytest.raises(DeviceError) as first:
            await driver.read(time.time())
        tries = device.account.handshakes
        with pytest.raises(DeviceError) as again:
            await driver.read(time.time())
    finally:
        await driver.close()
        await emulator.stop()
    assert str(first.value) == (
        f"{host}:{port} (P110(UK), firmware unknown, KLAP login v2) refused the login for "
        "'me@example.com': check the plug's username (the TP-Link account e-mail) and password; "
        "next try in 5 min")
    assert str(again.value) == str(first.value) and device.account.handshakes == tries
    assert "wrong-password" not in str(first.value)


@pytest.mark.parametrize(("fault", "expected"), [
    ("garbage", "bad answer from W: Error trying to decrypt device "),
    ("500", "bad answer from W: Device "),
    ("error", "bad answer from W: get_energy_usage answered UNSPECIFIC_ERROR (-1001)"),
    ("shape", "bad answer from W: get_energy_usage.current_power is 'lots', not a number"),
    ("nan", "bad reading from W: power nan is not a finite number"),
    ("inf", "bad reading from W: power inf is not a finite number"),
    ("negative", "bad reading from W: power -50 W is outside 0 .. 4000 W"),
])
async def test_every_bad_answer_is_one_line(fault: str, expected: str) -> None:
    """Undecryptable bytes, HTTP 500, a SMART error code, the wrong shape, NaN/inf/negative
    power: one line naming the device (validated at the source boundary, as the service does)."""
    from plugwatch.sources.validate import checked

    device = EmulatedTapo(dump(FIXTURES[0]), power=100.0, username=USER, password=PASSWORD)
    emulator, host, port = await serve(device)
    driver = PyKasaDriver(host, port, USER, PASSWORD)
    try:
        await driver.read(time.time())
        device.fault = fault
        try:
            sample: Any = checked(await driver.read(time.time()), driver.where)
        except DeviceError as exc:
            sample = ReadFailure(time.time(), str(exc), exc.kind)
        device.fault = None
        back = await driver.read(time.time())
    finally:
        await driver.close()
        await emulator.stop()
    assert isinstance(sample, ReadFailure)
    message = sample.reason.replace(f"{host}:{port}", "W")
    assert message.startswith(expected) and "\n" not in message, message
    assert back.power_w == 100.0  # the next good answer reads again


async def test_a_dropped_session_logs_in_again_without_a_failed_read() -> None:
    device = EmulatedTapo(dump(FIXTURES[0]), power=42.0, username=USER, password=PASSWORD)
    emulator, host, port = await serve(device)
    driver = PyKasaDriver(host, port, USER, PASSWORD)
    try:
        await driver.read(time.time())
        device.account.forget_sessions()  # a reboot: the device answers 403
        reading = await driver.read(time.time())
    finally:
        await driver.close()
        await emulator.stop()
    assert reading.power_w == 42.0 and device.account.handshakes == 2


async def test_the_connection_is_remembered_and_later_starts_skip_discovery(tmp_path) -> None:
    """The service stores python-kasa's connection parameters (not the password) in kv_state;
    the next start reads at once although the device no longer answers discovery."""
    from plugwatch.store import open_store

    device = EmulatedTapo(dump(FIXTURES[1]), power=75.0, username=USER, password=PASSWORD)
    emulator, host, port = await serve(device)
    config = config_from_dict({
        "database": f"sqlite:///{tmp_path}/t.db", "defaults": {"interval": 0.1},
        "plugs": [{"name": "kettle", "driver": "tapo", "host": f"{host}:{port}",
                   "username": USER, "password": PASSWORD}]})
    samples: list[Any] = []
    try:
        async with running_service(config, sample_listeners=[
                lambda plug, s: samples.append(s)]):
            await wait_for(lambda: any(isinstance(s, Reading) for s in samples), 15.0)
        store = open_store(config.database)
        kv = store.load_kv("device/")
        store.close()
        await emulator.set_online(device, False)
        emulator.discovery = False
        await emulator.set_online(device, True)  # same address and port, no UDP 20002 now
        samples.clear()
        async with running_service(config, sample_listeners=[
                lambda plug, s: samples.append(s)]):
            await wait_for(lambda: bool(samples), 15.0)
    finally:
        await emulator.stop()
    assert kv["device/kettle"]["connection"] == {
        "device_family": "SMART.KASAPLUG", "encryption_type": "KLAP", "login_version": 2,
        "https": False, "http_port": port}
    assert kv["device/kettle"]["model"] == "KP125M"
    assert PASSWORD not in json.dumps(kv) and "credentials" not in json.dumps(kv)
    assert isinstance(samples[0], Reading) and samples[0].power_w == 75.0
