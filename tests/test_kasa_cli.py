"""`plugwatch read` in a separate process in Python's dev mode: nothing left open or warned."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator


@pytest.mark.parametrize("model", ["HS300", "HS110v1"])
async def test_read_leaves_no_connection_open(model) -> None:
    """Reading a strip (probe, then every outlet) closes every connection it opened."""
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug(model, power=5.0)])
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-m", "plugwatch",
            "read", f"127.0.0.1:{port}", "--json",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await emulator.stop()
    lines = [json.loads(x) for x in out.decode().splitlines()]
    assert proc.returncode == 0
    assert err.decode() == ""
    assert [x["power_w"] for x in lines] == [5.0] * (6 if model == "HS300" else 1)
