"""`plugwatch status` and `plugwatch history` read what the service recorded; retention purges."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from plugwatch.cli import main
from plugwatch.emulator import EmulatedPlug, Emulator
from plugwatch.formatting import run_json, transition_json
from plugwatch.model import DetectorSettings, Reading, RunSummary, State, Transition
from plugwatch.store import Batch, open_store
from plugwatch.testing import emulated_config, running_service

CONFIG = """\
database: sqlite:///plugwatch.db
plugs:
  - {name: washer, host: 10.0.0.4}
  - {name: tv, host: 10.0.0.5}
"""


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A config whose database holds a washer cycle (written through the real store)."""
    config = tmp_path / "plugwatch.yaml"
    config.write_text(CONFIG)
    now = time.time()
    store = open_store(f"sqlite:///{tmp_path}/plugwatch.db")
    try:
        store.ensure_plugs(emulated_config({"washer": 1, "tv": 2}, "sqlite://").plugs)
        store.write_batch(Batch(
            readings=[("washer", Reading(now - 60, 2.0, True, 1.5))],
            transitions=[
                Transition("washer", now - 3600, State.OFF, State.STANDBY, "power", 1.6),
                Transition("washer", now - 3500, State.STANDBY, State.ON, "power", 2050.0),
                Transition("washer", now - 900, State.ON, State.STANDBY, "power", 1.6),
                Transition("tv", now - 90000, State.STANDBY, State.ON, "power", 80.0),  # > 24 h
            ],
            runs=[RunSummary("washer", now - 3500, now - 900, 820.0, 2100.0)],
        ))
    finally:
        store.close()
    return config


def test_history_json_lines_have_the_replay_shapes(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """--json --runs prints transition_json/run_json lines, oldest first, last 24 h only."""
    assert main(["history", "--config", str(recorded), "--json", "--runs"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["type"] for line in lines] == ["transition", "transition", "transition", "run"]
    assert [line.get("to") for line in lines[:3]] == ["standby", "on", "standby"]
    assert set(lines[0]) == set(transition_json(
        Transition("x", 0.0, State.OFF, State.ON, "power", 1.0)))
    assert set(lines[3]) == set(run_json(RunSummary("x", 0.0, 1.0, 1.0, 1.0)))
    assert lines[3]["energy_wh"] == 820.0


def test_history_filters_by_plug_and_since(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """--plug tv --since 2d shows the TV's older transition, as a readable line."""
    assert main(["history", "--config", str(recorded), "--plug", "tv", "--since", "2d"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "tv" in out[0] and "standby -> on (power) at 80.0 W" in out[0]


def test_history_of_an_unknown_plug_lists_the_valid_names(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A typo in --plug is one line on stderr naming the configured plugs; exit status 1."""
    assert main(["history", "--config", str(recorded), "--plug", "dryer"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "dryer" in err and "washer, tv" in err


def test_history_from_a_database_url_checks_the_plug_name_too(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """With --database instead of --config, a typo still gets one line naming the known plugs."""
    url = f"sqlite:///{recorded.parent}/plugwatch.db"
    assert main(["history", "--database", url, "--plug", "dryer"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'dryer'" in err and "tv, washer" in err
    assert main(["history", "--database", url, "--plug", "washer", "--runs"]) == 0
    assert "washer" in capsys.readouterr().out


def test_history_rejects_a_bad_since(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--since soon is one line saying how to write a duration."""
    assert main(["history", "--config", str(recorded), "--since", "soon"]) == 1
    err = capsys.readouterr().err
    assert "--since: invalid duration 'soon' (use e.g. 30s, 5m, 1h30m or 2d)" in err


def test_status_shows_each_configured_plug(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """status --json: one object per configured plug, with the last power and contact."""
    assert main(["status", "--config", str(recorded), "--json"]) == 0
    rows = {r["plug"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"washer", "tv"}
    assert rows["washer"]["state"] == "standby" and rows["washer"]["last_power_w"] == 2.0
    assert rows["washer"]["last_contact"] is not None
    assert main(["status", "--config", str(recorded)]) == 0
    assert "washer" in capsys.readouterr().out


async def test_retention_purges_old_readings(tmp_path: Path) -> None:
    """With a 1 s retention the service keeps only the last seconds of readings."""
    plug = EmulatedPlug("HS110v2", power=30.0)
    emulator = Emulator()
    [port] = await emulator.start([plug])
    config = emulated_config({"lamp": port}, f"sqlite:///{tmp_path}/r.db", interval_s=0.1,
                             detector=DetectorSettings(), retention_s=1.0)
    try:
        async with running_service(config) as service:
            await asyncio.sleep(2.6)
            kept, read_at = service.store.readings("lamp"), time.time()
    finally:
        await emulator.stop()
    assert service.sampler.stats.started >= 20
    # purges run at start and every second: without them the oldest would be ~2.5 s old
    assert kept and min(r.ts for r in kept) > read_at - 2.1


def test_history_runs_show_the_run_still_going(
    recorded: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A plug on right now: its run so far comes from the detector's snapshot, marked open."""
    from plugwatch.detect import Detector

    now = time.time()
    detector = Detector("tv", DetectorSettings(window_s=0, dwell_on_s=0))
    for i in range(60):
        detector.feed(Reading(now - 600 + 10 * i, 80.0))
    store = open_store(f"sqlite:///{recorded.parent}/plugwatch.db")
    try:
        store.write_batch(Batch(snapshots={"tv": (now - 10, detector.snapshot())}))
    finally:
        store.close()
    assert main(["history", "--config", str(recorded), "--json", "--runs", "--plug", "tv"]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert (line["type"], line["open"], line["duration_s"]) == ("run", True, 590.0)
    assert line["energy_wh"] == round(80 * 590 / 3600, 3)
