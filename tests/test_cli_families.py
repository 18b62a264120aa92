"""`plugwatch read --driver` and `plugwatch emulate --family` for the HTTP families, run as a user
runs them: in their own processes, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

from plugwatch.emulator.http import EmulatedHttpDevice
from plugwatch.emulator.http_server import HttpEmulator
from tests.test_kasa_cli import plugwatch


async def test_read_a_shelly_with_its_password_from_the_environment() -> None:
    """--driver shelly --password-env: one JSON line with the channel's reading."""
    device = EmulatedHttpDevice("shelly2", alias="dryer", power=[5.0, 640.0], channels=2,
                                password="pw")
    emulator = HttpEmulator()
    [port] = await emulator.start([device])
    os.environ["PLUGWATCH_TEST_SHELLY_PW"] = "pw"
    try:
        code, out, err = await plugwatch("read", f"127.0.0.1:{port}", "--driver", "shelly",
                                         "--channel", "1", "--password-env",
                                         "PLUGWATCH_TEST_SHELLY_PW", "--json")
    finally:
        del os.environ["PLUGWATCH_TEST_SHELLY_PW"]
        await emulator.stop()
    assert (code, err) == (0, "")
    line = json.loads(out)
    assert (line["channel"], line["alias"], line["power_w"], line["relay_on"]) == (
        1, "dryer", 640.0, True)


async def test_read_an_impossible_power_is_exit_1_and_one_line() -> None:
    """A Tasmota plug answering NaN watts: one stderr line naming it, no traceback."""
    device = EmulatedHttpDevice("tasmota", power=5.0)
    device.fault = "nan"
    emulator = HttpEmulator()
    [port] = await emulator.start([device])
    try:
        code, out, err = await plugwatch("read", f"127.0.0.1:{port}", "--driver", "tasmota")
    finally:
        await emulator.stop()
    assert (code, out) == (1, "")
    assert err == (f"plugwatch: error: bad reading from 127.0.0.1:{port}: power nan is not a "
                   "finite number\n")


async def test_emulate_a_tasmota_family_and_read_it() -> None:
    """`emulate --family tasmota` serves the real /cm endpoint until SIGTERM."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugwatch", "emulate", "--family", "tasmota", "--port", str(port),
        "--power", "33", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        code, out, _ = await plugwatch("read", f"127.0.0.1:{port}", "--driver", "tasmota",
                                       "--json")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert banner.startswith(f"serving 1 emulated tasmota device(s) over HTTP on 127.0.0.1:{port}")
    assert code == 0 and json.loads(out)["power_w"] == 33.0
    assert proc.returncode == 0
