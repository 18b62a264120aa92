"""`plugwatch run --workers K`: the plugs shared out over K processes, one database."""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.errors import ConfigError
from plugwatch.model import State
from plugwatch.service.workers import parse_shard, shard_of
from plugwatch.store import open_store

CONFIG = """\
database: sqlite:///{db}
defaults:
  interval: 0.2
  timeout: 1.0
  window: 2
  dwell: {{on: 0.4, standby: 1.0, off: 1.0}}
plugs:
{plugs}
"""


def test_shards_cover_every_plug_once() -> None:
    plugs = [f"p{i}" for i in range(7)]
    parts = [shard_of(plugs, (i, 3)) for i in range(3)]
    assert sorted(p for part in parts for p in part) == sorted(plugs)
    assert parts[0] == ["p0", "p3", "p6"]
    assert shard_of(plugs, None) == plugs


@pytest.mark.parametrize("text", ["2/2", "x/2", "1", "-1/2"])
def test_a_bad_shard_is_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--shard: expected I/K with 0 <= I < K"):
        parse_shard(text)


async def test_two_workers_sample_every_plug_once_and_stop_cleanly(tmp_path: Path) -> None:
    """Four plugs, two processes: each plug's off -> on is recorded exactly once, both workers
    keep their own rules-engine state, and SIGTERM to the parent stops everything with 0."""
    level = {"w": 0.0}
    plugs = [EmulatedPlug("HS110v2", power=lambda t: level["w"]) for _ in range(4)]
    emulator = Emulator()
    ports = await emulator.start(plugs)
    names = [f"plug{i}" for i in range(4)]
    lines = "\n".join(f'  - {{name: {n}, host: "127.0.0.1:{p}"}}'
                      for n, p in zip(names, ports, strict=True))
    config = tmp_path / "plugwatch.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "pw.db", plugs=lines))
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugwatch", "run", "--config", str(config), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    store = None
    try:
        store = await _wait_open(tmp_path / "pw.db", proc)
        await _until(lambda: len([r for r in store.status() if r["last_contact"]]) == 4, proc)
        level["w"] = 50.0
        await _until(lambda: all(
            any(t.to_state is State.ON for t in store.transitions(plug=n)) for n in names), proc)
        await _until(lambda: len(store.load_kv("rules_engine")) == 2, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, err.decode()
        for name in names:
            ons = [t for t in store.transitions(plug=name) if t.to_state is State.ON]
            assert len(ons) == 1
        assert sorted(store.load_kv("rules_engine")) == ["rules_engine@0/2", "rules_engine@1/2"]
        assert out.decode().count("-> on") == 4  # each worker printed its own plugs' changes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if store is not None:
            store.close()
        await emulator.stop()


async def _wait_open(db: Path, proc: subprocess.Popen[bytes]) -> Any:
    await _until(db.exists, proc)
    return open_store(f"sqlite:///{db}")


async def _until(check: Callable[[], bool], proc: subprocess.Popen[bytes],
                 timeout: float = 30.0) -> None:
    """Poll `check` until true; fail with the workers' stderr if they died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"workers exited {proc.returncode}: {err.decode()}")
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_zero_workers_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from plugwatch.cli import main

    assert main(["run", "--config", "missing.yaml", "--workers", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "plugwatch: error: --workers must be at least 1, got 0"


class _Writes(io.RawIOBase):
    """A raw stream that keeps each write() it is given, as the pipe sees them."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.calls.append(bytes(data))
        return len(data)


def test_each_line_of_run_goes_to_stdout_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers share stdout, and under PYTHONUNBUFFERED=1 (stdout written through) print()
    sent the newline apart: `[worker 0/2] serving ...[worker 1/2] serving ...` came out as one
    line. Each line, newline included, is one write (atomic on a pipe)."""
    from plugwatch.cli.service import say

    raw = _Writes()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", write_through=True))
    say("[worker 0/2] serving http://127.0.0.1:45737/")
    say("2026-12-02 17:14:25  dryer            state on (power) at 33.0 W")
    assert raw.calls == [b"[worker 0/2] serving http://127.0.0.1:45737/\n",
                         b"2026-12-02 17:14:25  dryer            state on (power) at 33.0 W\n"]
