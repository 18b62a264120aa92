"""`plugwatch read`, `discover` and `emulate` as a user runs them, against emulated plugs."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from plugwatch.cli import main
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.sources.kasa.driver import KasaDriver

READ_KEYS = {"host", "port", "outlet", "alias", "model", "power_w", "voltage_v", "current_a",
             "energy_kwh", "relay_on"}


class EmulatorThread:
    """An Emulator on its own event loop in a thread, so the CLI can run asyncio.run() here."""

    def __init__(self, plugs: list[EmulatedPlug]) -> None:
        self.plugs = plugs
        self.loop = asyncio.new_event_loop()
        self.emulator = Emulator()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ports = self.call(self.emulator.start(plugs, discovery_port=0))
        addr = self.emulator.discovery_address
        assert addr is not None
        self.udp_port = addr[1]

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.call(self.emulator.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def emulated() -> Iterator[EmulatorThread]:
    plugs = [
        EmulatedPlug("HS110v2", alias="washer", power=1234.5),
        EmulatedPlug("HS110v1", alias="fridge", power=80.25),
        EmulatedPlug("HS300", alias="desk", power=[10.0, 20.0, 0.0, 40.0, 50.0, 60.0]),
    ]
    plugs[2].outlets[2].relay_on = False
    emu = EmulatorThread(plugs)
    yield emu
    emu.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_read_json_of_a_v2_plug_has_the_exact_keys(emulated, capsys) -> None:
    """A single v2 plug gives one JSON line with outlet null and values in W/V/A/kWh."""
    code, out, err = run(capsys, "read", f"127.0.0.1:{emulated.ports[0]}", "--json")
    assert (code, err) == (0, [])
    [line] = [json.loads(x) for x in out]
    assert set(line) == READ_KEYS
    assert line["host"] == "127.0.0.1" and line["port"] == emulated.ports[0]
    assert line["outlet"] is None and line["alias"] == "washer" and line["model"] == "HS110(EU)"
    assert line["power_w"] == 1234.5 and line["voltage_v"] == 230.0 and line["relay_on"] is True
    assert line["current_a"] == pytest.approx(1234.5 / 230, abs=0.001)


def test_read_json_of_a_v1_plug_normalises_the_floats(emulated, capsys) -> None:
    """A v1 plug (floats in W/V/A/kWh) reads the same way as v2."""
    code, out, _ = run(capsys, "read", f"127.0.0.1:{emulated.ports[1]}", "--json")
    line = json.loads(out[0])
    assert code == 0 and line["alias"] == "fridge" and line["power_w"] == 80.25
    assert line["current_a"] == pytest.approx(80.25 / 230, abs=1e-5)


def test_read_of_a_strip_prints_every_outlet(emulated, capsys) -> None:
    """Without --outlet a strip prints one line per outlet, each with its own power and relay."""
    code, out, _ = run(capsys, "read", f"127.0.0.1:{emulated.ports[2]}", "--json")
    lines = [json.loads(x) for x in out]
    assert code == 0
    assert [x["power_w"] for x in lines] == [10.0, 20.0, 0.0, 40.0, 50.0, 60.0]
    assert [x["relay_on"] for x in lines] == [True, True, False, True, True, True]
    assert [x["outlet"] for x in lines] == [o.child_id for o in emulated.plugs[2].outlets]
    assert lines[3]["alias"] == "desk outlet 4"


@pytest.mark.parametrize("outlet", ["3", "child id"])
def test_read_one_strip_outlet_by_index_or_id(emulated, capsys, outlet) -> None:
    """--outlet takes a 0-based index or the child id verbatim."""
    strip = emulated.plugs[2]
    chosen = strip.outlets[3].child_id if outlet == "child id" else outlet
    code, out, _ = run(capsys, "read", f"127.0.0.1:{emulated.ports[2]}", "--outlet", chosen,
                       "--json")
    [line] = [json.loads(x) for x in out]
    assert code == 0 and line["power_w"] == 40.0 and line["outlet"] == strip.outlets[3].child_id


def test_read_text_is_one_line_per_outlet(emulated, capsys) -> None:
    """Without --json a reading is one readable line."""
    code, out, _ = run(capsys, "read", f"127.0.0.1:{emulated.ports[0]}")
    assert code == 0
    assert out == [f"127.0.0.1:{emulated.ports[0]}  'washer' (HS110(EU)): 1234.5 W, 230 V, "
                   "5.367 A, 0 kWh total, relay on"]


def test_unknown_outlet_lists_the_valid_ones(emulated, capsys) -> None:
    """An outlet the strip lacks is exit 1 and one line naming the valid indexes and ids."""
    port = emulated.ports[2]
    code, out, err = run(capsys, "read", f"127.0.0.1:{port}", "--outlet", "6")
    ids = ", ".join(o.child_id for o in emulated.plugs[2].outlets)
    assert (code, out) == (1, [])
    assert err == [f"plugwatch: error: 127.0.0.1:{port} has no outlet '6': use an index 0..5 "
                   f"or an id ({ids})"]


def test_outlet_on_a_single_plug_is_an_error(emulated, capsys) -> None:
    port = emulated.ports[0]
    code, _, err = run(capsys, "read", f"127.0.0.1:{port}", "--outlet", "0")
    assert code == 1
    assert err == [f"plugwatch: error: 127.0.0.1:{port} is a single plug, not a strip: "
                   "remove outlet '0'"]


def test_refused_connection_is_exit_1_and_one_line(capsys) -> None:
    """Nothing listening: exit 1, one stderr line, no traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(capsys, "read", f"127.0.0.1:{port}", "--json")
    assert (code, out) == (1, [])
    assert err == [f"plugwatch: error: connection refused by 127.0.0.1:{port}"]


def test_invalid_host_name_is_unreachable_not_a_traceback(capsys) -> None:
    """A host name that cannot even be encoded is a DeviceUnreachable line like any other."""
    code, _, err = run(capsys, "read", "a..b:9999")
    assert code == 1 and len(err) == 1
    assert err[0].startswith("plugwatch: error: cannot reach a..b:9999: ")


def test_hung_plug_times_out_with_the_timeout_named(emulated, capsys) -> None:
    """A plug that accepts the request and never answers gives a timeout after --timeout."""
    emulated.plugs[0].hung = True
    port = emulated.ports[0]
    code, _, err = run(capsys, "read", f"127.0.0.1:{port}", "--timeout", "0.3")
    assert code == 1
    assert err == [f"plugwatch: error: timeout after 0.3 s reading 127.0.0.1:{port}"]


def test_offline_plug_is_refused_then_back_on_the_same_port(emulated, capsys) -> None:
    plug, port = emulated.plugs[0], emulated.ports[0]
    emulated.call(emulated.emulator.set_online(plug, False))
    assert run(capsys, "read", f"127.0.0.1:{port}")[0] == 1
    emulated.call(emulated.emulator.set_online(plug, True))
    assert run(capsys, "read", f"127.0.0.1:{port}")[0] == 0


@pytest.mark.parametrize("address", ["127.0.0.1:http", "127.0.0.1:70000", ":9999"])
def test_bad_address_is_one_line(capsys, address) -> None:
    code, _, err = run(capsys, "read", address)
    assert code == 1
    assert err == [f"plugwatch: error: bad address {address!r}: use HOST or HOST:PORT with a "
                   "port 1..65535"]


def test_discover_lists_every_emulated_plug(emulated, capsys) -> None:
    """UDP discovery on 127.0.0.1 finds every plug, with model, alias, id and a strip's outlets."""
    code, out, _ = run(capsys, "discover", "--target", "127.0.0.1", "--port",
                       str(emulated.udp_port), "--timeout", "0.3", "--json")
    found = {d["alias"]: d for d in map(json.loads, out)}
    assert code == 0 and set(found) == {"washer", "fridge", "desk"}
    desk = found["desk"]
    assert set(desk) == {"host", "port", "driver", "model", "alias", "device_id", "outlets"}
    assert desk["driver"] == "kasa"
    assert desk["port"] == emulated.ports[2] and desk["model"] == "HS300(US)"
    assert desk["device_id"] == emulated.plugs[2].device_id
    assert [o["alias"] for o in desk["outlets"]] == [f"desk outlet {i}" for i in range(1, 7)]
    assert found["washer"]["outlets"] == []


def test_discover_with_an_unresolvable_target_is_one_line(capsys) -> None:
    code, out, err = run(capsys, "discover", "--target", "no-such-host.invalid", "--timeout", "0.2")
    assert (code, out) == (1, [])
    assert len(err) == 1
    assert err[0].startswith("plugwatch: error: cannot resolve discovery target "
                             "'no-such-host.invalid': ")


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


def test_emulate_serves_count_plugs_until_sigterm() -> None:
    """`plugwatch emulate --port P --count 2` serves P and P+1 and stops cleanly on SIGTERM."""
    port = _free_port_pair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugwatch", "emulate", "--port", str(port), "--count", "2",
         "--model", "KP115", "--power", "42", "--no-discovery"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"127.0.0.1:{port}..{port + 1}" in banner

        async def read_both() -> list[float]:
            drivers = [KasaDriver("127.0.0.1", p) for p in (port, port + 1)]
            readings = [await d.read(0.0) for d in drivers]
            for d in drivers:
                await d.close()
            return [r.power_w for r in readings]

        assert asyncio.run(read_both()) == [42.0, 42.0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""


def test_emulate_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "plugwatch", "emulate", "--port", str(port), "--no-discovery"],
            capture_output=True, text=True, timeout=20,
        )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"plugwatch: error: cannot listen on 127.0.0.1 (TCP {port}..{port}): address already in "
        "use; choose other ports with --port / --discovery-port (or --no-discovery)"
    ]
