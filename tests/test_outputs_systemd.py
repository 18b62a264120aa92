"""systemd: the unit file verifies, and the notify protocol over a real unix datagram socket —
READY once sampling runs, watchdog pings while healthy, RELOADING/READY on SIGHUP, STOPPING."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.outputs.live import Health
from plugwatch.outputs.systemd import SystemdNotifier
from tests.conftest import REPO
from tests.helpers import wait_for
from tests.observe_helpers import fetch, scrape

UNIT = REPO / "contrib" / "plugwatch.service"


def notify_socket(path: Path) -> socket.socket:
    """A bound, non-blocking unix datagram socket: what systemd listens on."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    return sock


async def next_message(sock: socket.socket, timeout: float = 10.0) -> set[str]:
    """The KEY=VALUE lines of the next datagram."""
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), timeout)
    return set(data.decode().split("\n"))


async def until(sock: socket.socket, line: str, timeout: float = 10.0) -> list[set[str]]:
    """Datagrams up to and including the first holding `line`."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            message = await next_message(sock, timeout)
            seen.append(message)
            if line in message:
                return seen


def test_unit_file_is_hardened_and_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing wrong (ExecStart pointed at this venv's plugwatch)."""
    text = UNIT.read_text()
    for line in ("Type=notify", "DynamicUser=yes", "StateDirectory=plugwatch",
                 "ProtectSystem=strict", "Restart=on-failure", "WatchdogSec=60s",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text.splitlines(), line
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    plugwatch = Path(sys.executable).with_name("plugwatch")
    unit = tmp_path / "plugwatch.service"
    unit.write_text(text.replace("/usr/local/bin/plugwatch", str(plugwatch)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "plugwatch.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


async def test_watchdog_pings_only_while_healthy(tmp_path: Path) -> None:
    """WATCHDOG=1 every half period while healthy; none (and a STATUS line) while unhealthy."""
    sock = notify_socket(tmp_path / "notify")
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify"),
                                "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())})
    health = [Health(True)]
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.watchdog(lambda: health[0], stop))
    try:
        assert await next_message(sock) == {"WATCHDOG=1"}
        health[0] = Health(False, "database unreachable: connection refused")
        await until(sock, "STATUS=unhealthy: database unreachable: connection refused")
        with pytest.raises(TimeoutError):  # no ping while unhealthy
            await next_message(sock, timeout=0.4)
        health[0] = Health(True)
        assert "WATCHDOG=1" in await next_message(sock)
    finally:
        stop.set()
        await task
        sock.close()


def test_abstract_socket_and_foreign_watchdog_pid() -> None:
    """'@name' is the abstract namespace; a WATCHDOG_PID of another process means no watchdog."""
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "@plugwatch-test", "WATCHDOG_USEC": "1000000",
                                "WATCHDOG_PID": "1"})
    assert notifier.address == "\0plugwatch-test" and notifier.watchdog_s is None
    assert not SystemdNotifier({}).enabled and not SystemdNotifier({}).notify("READY=1")


CONFIG = """\
database: sqlite:///{db}
defaults: {{interval: 0.2, timeout: 0.5, dwell: {{on: 0.3s, standby: 1s, off: 1s}},
           thresholds: {{on: {on}}}}}
plugs:
  - {{name: washer, host: "127.0.0.1:{port}"}}
http: {{listen: "127.0.0.1:0"}}
"""


async def test_plugwatch_run_under_a_notify_socket(tmp_path: Path) -> None:
    """The real `plugwatch run` process: READY=1 after sampling started, pings, /metrics, then
    SIGHUP retunes the detector between RELOADING=1 and READY=1, SIGTERM gives STOPPING=1 and
    exit 0; every log line is one JSON object."""
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="washer", power=50.0)])
    config = tmp_path / "plugwatch.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "pw.db", port=port, on=10))
    sock = notify_socket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "300000"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugwatch", "--log-format", "json", "-v", "run", "--config",
        str(config), env=env, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
    logs: list[dict] = []

    async def read_logs() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            logs.append(json.loads(line))  # fails the test on a line that is not JSON

    reader = asyncio.create_task(read_logs())
    try:
        first = await until(sock, "READY=1", timeout=30)
        assert first == [{"READY=1", "STATUS=sampling 1 plugs"}]
        await until(sock, "WATCHDOG=1")
        await until(sock, "WATCHDOG=1")
        await wait_for(lambda: any("serving" in m["message"] for m in logs), 10)  # the pipe read
        [url] = [m["message"].split(" on ")[-1] for m in logs if "serving" in m["message"]]
        await asyncio.sleep(1.0)
        status, text, _ = await fetch(url + "metrics")
        assert status == 200
        samples = scrape(text)
        assert samples[("plugwatch_state", (("plug", "washer"), ("state", "on")))] == 1.0
        assert samples[("plugwatch_reads_total", (("plug", "washer"),))] >= 3

        config.write_text(CONFIG.format(db=tmp_path / "pw.db", port=port, on=100))
        proc.send_signal(signal.SIGHUP)
        reload = await until(sock, "READY=1")
        assert any("RELOADING=1" in m for m in reload)
        assert any(line.startswith("MONOTONIC_USEC=") for m in reload for line in m)
        await wait_for(  # logged before READY=1; the test's pipe reader may lag behind
            lambda: any(m["message"] == "new detector settings for washer" for m in logs), 10)

        proc.send_signal(signal.SIGTERM)
        await until(sock, "STOPPING=1")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader
        sock.close()
        await emulator.stop()
    assert {"ts", "level", "logger", "message"} <= set(logs[0])


async def test_run_workers_children_notify_and_ping_themselves(tmp_path: Path) -> None:
    """`run --workers 2` under systemd (NotifyAccess=all): each worker says READY and pings the
    watchdog, although WATCHDOG_PID names the parent; SIGTERM stops all with exit 0."""
    emulator = Emulator()
    ports = await emulator.start([EmulatedPlug("HS110v2", alias=f"p{i}", power=5.0)
                                  for i in range(2)])
    config = tmp_path / "plugwatch.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'pw.db'}\ndefaults: {{interval: 0.2}}\n"
                      "plugs:\n" + "".join(f"  - {{name: p{i}, host: \"127.0.0.1:{port}\"}}\n"
                                           for i, port in enumerate(ports)))
    sock = notify_socket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "300000",
           "WATCHDOG_PID": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugwatch", "run", "--workers", "2", "--config", str(config),
        env=env, cwd=tmp_path)
    try:
        messages: list[set[str]] = []
        async with asyncio.timeout(40):
            while sum("READY=1" in m for m in messages) < 2 or \
                    sum("WATCHDOG=1" in m for m in messages) < 4:
                messages.append(await next_message(sock, 40))
        assert sum("STATUS=sampling 1 plugs" in m for m in messages) == 2
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        sock.close()
        await emulator.stop()
