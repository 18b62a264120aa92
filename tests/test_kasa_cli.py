"""`plugwatch read` in a separate process in Python's dev mode: nothing left open or warned."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator

# Dev mode's asyncio debug warns when one callback holds the loop over 0.1 s: on a loaded
# machine that is the scheduler, not the command. Every other line on stderr still fails.
SLOW_CALLBACK = re.compile(r"^Executing <.*> took \d+\.\d+ seconds$")


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
    assert [line for line in err.decode().splitlines() if not SLOW_CALLBACK.match(line)] == []
    assert [x["power_w"] for x in lines] == [5.0] * (6 if model == "HS300" else 1)


async def plugwatch(*argv: str) -> tuple[int, str, str]:
    """Run the CLI in its own process (it runs its own event loop); (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugwatch", *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_bad_answer_is_exit_1_and_one_stderr_line() -> None:
    """A plug that sends a lying length header: one line naming host:port, no traceback."""

    async def lying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\xff\xff\xff\xff")
        await writer.drain()

    server = await asyncio.start_server(lying, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code, out, err = await plugwatch("read", f"127.0.0.1:{port}", "--json")
    finally:
        server.close()
    assert (code, out) == (1, "")
    assert err == (f"plugwatch: error: bad answer from 127.0.0.1:{port}: length header says "
                   "4294967295 bytes, more than the 65536 allowed\n")


async def test_discover_with_no_answer_says_so() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))  # a UDP port that swallows the query
    port = receiver.getsockname()[1]
    try:
        code, out, err = await plugwatch("discover", "--family", "kasa", "--target",
                                         "127.0.0.1", "--port", str(port), "--timeout", "0.3")
    finally:
        receiver.close()
    assert (code, out) == (0, "")
    assert err == f"no plug answered within 0.3 s (asked: Kasa at 127.0.0.1:{port})\n"


async def test_bad_timeout_is_one_line() -> None:
    code, _, err = await plugwatch("read", "127.0.0.1", "--timeout", "0")
    assert code == 1
    assert err == "plugwatch: error: --timeout must be more than 0 seconds, got 0\n"
