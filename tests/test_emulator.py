"""The emulator over real TCP/UDP: answers like firmware, online/offline, hung, ports, energy."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.emulator.answers import answer
from plugwatch.errors import DeviceUnreachable
from plugwatch.sources.kasa import protocol as wire
from plugwatch.sources.kasa.driver import KasaDriver
from tests.helpers import Clock


async def ask(port: int, request: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    """One raw request on a fresh connection; the decoded answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(wire.encode_request(request))
        async with asyncio.timeout(timeout):
            (n,) = wire.HEADER.unpack(await reader.readexactly(4))
            return wire.parse_answer(await reader.readexactly(n))
    finally:
        writer.close()


async def test_unknown_module_and_method_answered_like_real_firmware(emulator) -> None:
    [port] = await emulator.start([EmulatedPlug("HS110v2", power=3.0)])
    got = await ask(port, {"smartlife.iot.dimmer": {"get_dimmer_parameters": {}},
                           "system": {"reboot": {"delay": 1}}, "emeter": {"get_realtime": {}}})
    assert got["smartlife.iot.dimmer"] == {"err_code": -1, "err_msg": "module not support"}
    assert got["system"] == {"reboot": {"err_code": -2, "err_msg": "member not support"}}
    assert got["emeter"]["get_realtime"]["power_mw"] == 3000


async def test_sysinfo_looks_like_a_real_plug(emulator) -> None:
    plugs = [EmulatedPlug("HS110v1", alias="fridge"), EmulatedPlug("HS300", alias="desk")]
    ports = await emulator.start(plugs)
    single = (await ask(ports[0], wire.SYSINFO_QUERY))["system"]["get_sysinfo"]
    strip = (await ask(ports[1], wire.SYSINFO_QUERY))["system"]["get_sysinfo"]
    assert single["alias"] == "fridge" and single["model"] == "HS110(EU)"
    assert single["feature"] == "TIM:ENE" and single["relay_state"] == 1
    assert "children" not in single and single["err_code"] == 0
    assert strip["child_num"] == 6 and len(strip["children"]) == 6
    assert all(c["id"].startswith(plugs[1].device_id) for c in strip["children"])


async def test_strip_outlets_have_their_own_power_state_and_energy(emulator) -> None:
    clock = Clock()
    strip = EmulatedPlug("HS300", power=[100.0, 200.0, 0.0, 0.0, 0.0, 0.0], clock=clock)
    [port] = await emulator.start([strip])
    strip.outlets[1].relay_on = False
    clock.now = 3600.0
    child = strip.outlets[0].child_id
    got = await ask(port, {"context": {"child_ids": [child]}, "emeter": {"get_realtime": {}}})
    assert got["emeter"]["get_realtime"]["power_mw"] == 100_000
    assert got["emeter"]["get_realtime"]["total_wh"] == 100
    assert strip.outlets[1].energy_wh == 0.0
    unknown = await ask(port, {"context": {"child_ids": ["nope"]}, "emeter": {"get_realtime": {}}})
    assert unknown["emeter"]["get_realtime"]["err_code"] != 0
    off = await ask(port, {"context": {"child_ids": [strip.outlets[2].child_id]},
                           "system": {"set_relay_state": {"state": 0}}})
    assert off["system"]["set_relay_state"] == {"err_code": 0}
    assert [o.relay_on for o in strip.outlets] == [True, False, False, True, True, True]


async def test_energy_integrates_a_changing_power_over_emulated_time(emulator) -> None:
    """speed 60: one real minute is an emulated hour; total_wh follows the power curve."""
    clock = Clock()
    plug = EmulatedPlug("HS110v2", power=lambda t: 2000.0 if t < 1800 else 10.0, speed=60,
                        clock=clock)
    [port] = await emulator.start([plug])
    clock.now = 29.0  # emulated 1740 s at 2000 W
    first = (await ask(port, {"emeter": {"get_realtime": {}}}))["emeter"]["get_realtime"]
    clock.now = 60.0  # another emulated 1800 s at 10 W
    second = (await ask(port, {"emeter": {"get_realtime": {}}}))["emeter"]["get_realtime"]
    assert (first["power_mw"], first["total_wh"]) == (2_000_000, 967)
    assert (second["power_mw"], second["total_wh"]) == (10_000, 1005)
    plug.relay_on = False
    clock.now = 120.0
    assert plug.energy_wh == pytest.approx(1005.0, abs=0.01)  # relay off draws nothing


async def test_port_p_gives_p_to_p_plus_n_minus_1() -> None:
    plugs = [EmulatedPlug("KP115", power=float(i)) for i in range(3)]
    for _ in range(20):  # below the OS's ephemeral range; retry if another test holds one
        base, emu = random.randint(20000, 30000), Emulator()
        try:
            ports = await emu.start(plugs, port=base)
            break
        except OSError:
            continue
    else:
        pytest.fail("no three consecutive free ports in 20000..30000")
    assert ports == [base, base + 1, base + 2]
    powers = [(await ask(p, {"emeter": {"get_realtime": {}}}))["emeter"]["get_realtime"]
              ["power_mw"] for p in ports]
    await emu.stop()
    assert powers == [0, 1000, 2000]


async def test_offline_closes_connections_and_comes_back_on_the_same_port(emulator) -> None:
    plug = EmulatedPlug("HS110v2", power=5.0)
    [port] = await emulator.start([plug])
    driver = KasaDriver("127.0.0.1", port, timeout=1.0)
    assert (await driver.read(0.0)).power_w == 5.0
    await emulator.set_online(plug, False)
    with pytest.raises(DeviceUnreachable):  # the open connection was closed ...
        await driver.read(1.0)
    with pytest.raises(DeviceUnreachable) as exc:  # ... and new ones are refused
        await driver.read(2.0)
    assert str(exc.value) == f"connection refused by 127.0.0.1:{port}"
    await emulator.set_online(plug, True)
    assert (await driver.read(3.0)).power_w == 5.0
    await driver.close()


async def test_hung_plug_accepts_and_never_answers_while_others_do(emulator) -> None:
    hung, fine = EmulatedPlug("HS110v2", power=1.0), EmulatedPlug("HS110v2", power=2.0)
    hung.hung = True
    ports = await emulator.start([hung, fine])
    with pytest.raises(TimeoutError):
        await ask(ports[0], wire.SYSINFO_QUERY, timeout=0.2)
    assert (await ask(ports[1], {"emeter": {"get_realtime": {}}}))["emeter"]["get_realtime"][
        "power_mw"] == 2000


async def test_oversized_or_garbage_request_closes_the_connection(emulator) -> None:
    [port] = await emulator.start([EmulatedPlug()])
    for junk in (b"\xff\xff\xff\xff", wire.HEADER.pack(3) + b"abc"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(junk)
        async with asyncio.timeout(2):
            assert await reader.read() == b""
        writer.close()
    assert (await ask(port, wire.SYSINFO_QUERY))["system"]["get_sysinfo"]["err_code"] == 0


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.append(json.loads(wire.decrypt(data)))  # no length prefix on UDP


async def test_udp_discovery_answers_online_plugs_without_length_prefix(emulator) -> None:
    plugs = [EmulatedPlug("HS110v2", alias="a"), EmulatedPlug("HS300", alias="b"),
             EmulatedPlug("KP115", alias="c")]
    ports = await emulator.start(plugs, discovery_port=0)
    await emulator.set_online(plugs[2], False)
    assert emulator.discovery_address is not None
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Replies, local_addr=("127.0.0.1", 0))
    try:
        transport.sendto(wire.encode_datagram(wire.SYSINFO_QUERY), emulator.discovery_address)
        for _ in range(100):
            if len(proto.replies) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # a reply for the offline plug would have come by now
    finally:
        transport.close()
    infos = sorted((r["system"]["get_sysinfo"] for r in proto.replies), key=lambda i: i["alias"])
    assert [(i["alias"], i["emulated_port"]) for i in infos] == [("a", ports[0]), ("b", ports[1])]


async def test_discovery_finds_hundreds_of_plugs_from_one_emulator(emulator) -> None:
    """Replies go out in bursts, so a client's socket buffer does not overflow and drop some."""
    from plugwatch.sources.kasa.discovery import discover

    plugs = [EmulatedPlug("KP115", alias=f"p{i}") for i in range(500)]
    await emulator.start(plugs, discovery_port=0)
    assert emulator.discovery_address is not None
    found = await discover("127.0.0.1", emulator.discovery_address[1], timeout=0.6)
    assert len(found) == 500
    assert {d.alias for d in found} == {p.alias for p in plugs}


@pytest.mark.parametrize("model", ["HS110v1", "HS110v2", "KP115"])
def test_the_quick_combined_answer_is_byte_for_byte_the_general_one(model: str) -> None:
    """The emulator's cheap path for the driver's sysinfo + emeter request (cipher text of the
    unchanging head kept) gives exactly the bytes of encoding `answer()` whole, whatever the
    time, relay, alias and energy."""
    from plugwatch.emulator.server import answer_body

    combined = {"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}}
    body = wire.encode_datagram(combined)
    clock = Clock()
    plug = EmulatedPlug(model, power=123.456, clock=clock, alias='wäsche "1"')
    for t, relay_on, alias in [(0.0, True, None), (3600.7, True, None), (4000.0, False, None),
                               (4100.0, True, "renamed")]:
        clock.now = t
        plug.relay_on = relay_on
        if alias:
            plug.alias = alias
        whole = wire.encrypt(json.dumps(answer(plug, combined), separators=(",", ":")).encode())
        assert answer_body(plug, body) == whole, (t, relay_on, alias)
