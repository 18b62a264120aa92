"""`plugwatch status` tells a live view from a stale one, and why a plug is unreachable.

Stale data is written through the real store; live data comes from the real service over its HTTP
endpoint (GET /api/status), with emulated Kasa plugs over TCP.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from plugwatch.cli import main
from plugwatch.cli.status import from_database
from plugwatch.config import load_config
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.formatting import zone_named
from plugwatch.model import Reading, State, Transition
from plugwatch.service.app import run_service
from plugwatch.store import Batch, open_store
from plugwatch.testing import emulated_config
from tests.test_notify_receivers import free_port

CONFIG = """\
database: sqlite:///{db}
defaults: {{interval: {interval}, dwell: {{on: 0.2s, standby: 0.2s, off: 0.2s}}}}
{http}plugs:
  - {{name: washer, host: "127.0.0.1:{p1}"}}
  - {{name: tv, host: "127.0.0.1:{p2}"}}
"""


def write_config(tmp_path: Path, ports: tuple[int, int], http: int | None = None,
                 interval: str = "5s") -> Path:
    path = tmp_path / "plugwatch.yaml"
    listen = f"http: {{listen: '127.0.0.1:{http}'}}\n" if http else ""
    path.write_text(CONFIG.format(db=tmp_path / "pw.db", interval=interval, http=listen,
                                  p1=ports[0], p2=ports[1]))
    return path


def record(db: str, ago_s: float) -> None:
    """The washer on and the TV in standby, as a service that stopped `ago_s` ago left them."""
    now = time.time()
    store = open_store(db)
    try:
        store.ensure_plugs(emulated_config({"washer": 1, "tv": 2}, "sqlite://").plugs)
        store.write_batch(Batch(
            readings=[("washer", Reading(now - ago_s, 2036.0)),
                      ("tv", Reading(now - ago_s, 0.9))],
            transitions=[Transition("washer", now - 3600, State.OFF, State.ON, "power", 2000.0),
                         Transition("tv", now - 7200, State.ON, State.STANDBY, "power", 0.9)],
        ))
    finally:
        store.close()


def test_a_stopped_service_shows_as_stale_and_check_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """12 minutes after the last reading (5 s interval) every line says "stale, last contact
    12 min ago"; --check exits 2 naming each plug; --json says stale: true."""
    config = write_config(tmp_path, (1, 2))
    record(load_config(config).database, ago_s=12 * 60 + 5)
    assert main(["status", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert all(line.endswith("stale, last contact 12 min ago") for line in lines), lines
    assert lines[0].startswith("washer           on               2036 W  since ")
    assert main(["status", "--config", str(config), "--check"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "plugwatch: check: washer: stale, last contact 12 min ago",
        "plugwatch: check: tv: stale, last contact 12 min ago",
    ]
    assert main(["status", "--config", str(config), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["stale"] for row in rows] == [True, True]


def test_fresh_data_from_the_database_is_not_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A reading 5 s ago (a few intervals of 5 s are allowed) is live: --check exits 0."""
    config = write_config(tmp_path, (1, 2))
    record(load_config(config).database, ago_s=5)
    assert main(["status", "--config", str(config), "--check"]) == 0
    out = capsys.readouterr().out
    assert "stale" not in out and "last contact" in out and "(5 s ago)" in out


def test_an_unreachable_plug_shows_its_failure_not_a_power() -> None:
    """The database's last failure reason stands where the power would be."""
    now = time.time()
    (plug,) = from_database([{
        "plug": "fridge", "state": "unreachable", "since": now - 600, "last_power_w": 5123.0,
        "last_contact": now - 601, "snapshot_ts": now - 2,
        "last_failure": "timeout after 2 s reading plug 'fridge' at 10.0.0.9:9999",
    }], {"fridge": 5.0})
    line = plug.line(zone_named("UTC"), now)
    assert "5123" not in line and "5.1" not in line and " W " not in line
    assert "unreachable  timeout after 2 s reading plug 'fridge'" in line
    assert plug.problem(now) == ("fridge: unreachable (timeout after 2 s reading plug 'fridge' "
                                 "at 10.0.0.9:9999)")


async def test_status_asks_the_running_service_and_sees_a_plug_go_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """With `http:` configured, status reads the running service's /api/status: live powers,
    --check 0; once a plug drops off the network it is unreachable (no power shown), --check 2.
    With nothing listening there, it falls back to the database, whose data is stale ten minutes
    later."""
    washer, tv = EmulatedPlug("HS110v2", power=1500.0), EmulatedPlug("KP115", power=60.0)
    emulator = Emulator()
    ports = await emulator.start([washer, tv])
    config_path = write_config(tmp_path, (ports[0], ports[1]), http=free_port(), interval="0.2s")
    config = load_config(config_path)
    store = await asyncio.to_thread(open_store, config.database)
    stop = asyncio.Event()
    task = asyncio.create_task(run_service(config, store, stop=stop))

    async def status(*extra: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["status", "--config", str(config_path), *extra])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    try:
        deadline = time.monotonic() + 15
        while True:
            code, out, _ = await status("--check")
            if code == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert code == 0, out
        assert "washer           on               1500 W" in out
        _, out, _ = await status("--json")
        assert {json.loads(line)["source"] for line in out.splitlines()} == {"service"}
        await emulator.set_online(tv, False)
        deadline = time.monotonic() + 15
        while "unreachable" not in out and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            code, out, err = await status("--check")
        assert code == 2 and "plugwatch: check: tv: unreachable" in err
        (tv_line,) = [line for line in out.splitlines() if line.startswith("tv ")]
        # the reason stands where the power would: no "60.0 W" (the port may well contain 60)
        assert "unreachable" in tv_line and " W " not in tv_line.split("since")[0]
        assert f"127.0.0.1:{ports[1]}" in tv_line  # the service says why
    finally:
        stop.set()
        await task
        await emulator.stop()
        store.close()
    code, out, _ = await status()  # nothing serves /api/status now: the database answers
    (tv_line,) = [line for line in out.splitlines() if line.startswith("tv ")]
    assert code == 0 and tv_line.startswith("tv               unreachable  ")
    assert f"127.0.0.1:{ports[1]}" in tv_line and "no answer" not in tv_line  # why, stored
    _, out, _ = await status("--json")
    assert {json.loads(line)["source"] for line in out.splitlines()} == {"database"}
    # ten minutes after the service stopped, what it left in the database reads as stale
    stopped = time.time()
    with pytest.MonkeyPatch.context() as later:
        later.setattr(time, "time", lambda: stopped + 600)
        code, out, err = await status("--check")
    assert code == 2
    (washer_line,) = [line for line in out.splitlines() if line.startswith("washer ")]
    assert washer_line.endswith("stale, last contact 10 min ago"), washer_line
    assert "plugwatch: check: washer: stale, last contact 10 min ago" in err.splitlines()
