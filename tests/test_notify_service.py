"""`plugwatch run` as a real process: alerts survive kill -9, broken rules stop the start,
SIGHUP with a broken file keeps the old rules, `history --alerts` shows delivery status."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_notify_receivers import HttpReceiver, http_receiver

from plugwatch.cli import main
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.store import open_store
from tests.helpers import wait_for

__all__ = ["http_receiver"]  # fixture
RULE = """\
- name: tv-on
  plugs: [tv]
  when: {to: "on"}
  notify: phone
  title: "{{ plug }} switched on"
"""


def write_config(tmp_path: Path, port: int, receiver: HttpReceiver) -> Path:
    (tmp_path / "rules.yaml").write_text(RULE, encoding="utf-8")
    cfg = tmp_path / "plugwatch.yaml"
    cfg.write_text(
        "database: sqlite:///pw.db\n"
        "defaults: {interval: 0.1, timeout: 0.5, window: 1,\n"
        "           dwell: {on: 0.3s, standby: 0.5s, off: 0.5s}}\n"
        f"plugs:\n  - {{name: tv, driver: kasa, host: '127.0.0.1:{port}'}}\n"
        f"targets:\n  phone: {receiver.url}\n"
        "rules: rules.yaml\n", encoding="utf-8")
    return cfg


def start(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plugwatch", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def alert_rows(tmp_path: Path) -> list[dict]:
    if not (tmp_path / "pw.db").exists():
        return []
    store = open_store(f"sqlite:///{tmp_path}/pw.db")
    try:
        return store.alerts()
    finally:
        store.close()


def state_of(tmp_path: Path, plug: str) -> str | None:
    if not (tmp_path / "pw.db").exists():
        return None
    store = open_store(f"sqlite:///{tmp_path}/pw.db")
    try:
        return next((r["state"] for r in store.status() if r["plug"] == plug), None)
    finally:
        store.close()


async def test_kill_9_between_the_transition_and_the_send_delivers_once(
    tmp_path: Path, http_receiver: HttpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    level = [2.0]
    emulator = Emulator()
    [port] = await emulator.start([EmulatedPlug("HS110v2", alias="tv", power=lambda s: level[0])])
    cfg = write_config(tmp_path, port, http_receiver)
    http_receiver.down()  # the notifier is down: the alert waits in the outbox
    proc = start(cfg)
    try:
        await wait_for(lambda: state_of(tmp_path, "tv") == "standby", 60, every=0.1)  # start-up
        level[0] = 100.0
        await wait_for(lambda: any(r["attempts"] >= 1 for r in alert_rows(tmp_path)), 20, every=0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        http_receiver.up()
        proc = start(cfg)
        await wait_for(lambda: bool(http_receiver.received), 60, every=0.1)  # start-up
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await emulator.stop()
    assert [m["title"] for m in http_receiver.received] == ["tv switched on"]
    (row,) = alert_rows(tmp_path)
    assert row["status"] == "sent" and row["attempts"] == 2
    capsys.readouterr()
    assert main(["history", "--alerts", "--config", str(cfg)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "tv-on -> phone: tv switched on (sent " in line and "2 attempts" in line


async def test_broken_rules_refuse_start_and_sighup_keeps_the_old_rules(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    cfg = write_config(tmp_path, 9, http_receiver)
    (tmp_path / "rules.yaml").write_text(RULE.replace('to: "on"', "to: onn"))
    proc = start(cfg)
    assert proc.wait(60) == 1  # a loaded machine may take long to start Python
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert f"plugwatch: error: {tmp_path}/rules.yaml:3: rule 'tv-on': when.to[0]: " \
           "unknown state 'onn'" in err and "Traceback" not in err
    (tmp_path / "rules.yaml").write_text(RULE)
    proc = start(cfg)
    try:
        # the plug row appears once the service runs (its SIGHUP handler is installed before)
        await wait_for(lambda: state_of(tmp_path, "tv") is not None, 60, every=0.1)
        (tmp_path / "rules.yaml").write_text("- oops")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert proc.poll() is None  # still running, on the old rules
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    assert "rules not reloaded, the old rules stay in force" in proc.stderr.read().decode()
