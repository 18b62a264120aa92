"""`plugwatch db copy SRC DST` moves a whole history, e.g. from SQLite to PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugwatch.cli import main
from plugwatch.model import Reading, RunSummary, State, Transition
from plugwatch.store import Batch, open_store
from plugwatch.store.scratch import scratch_schema


def fill(url: str) -> None:
    """Two plugs with readings, transitions, a run, snapshots and a kv value."""
    store = open_store(url)
    try:
        store.write_batch(Batch(
            readings=[(p, Reading(1000.0 + i, 5.0 * i, True, 0.01 * i))
                      for p in ("washer", "tv") for i in range(300)],
            transitions=[Transition("washer", 1010.0, State.STANDBY, State.ON, "power", 40.0),
                         Transition("washer", 1200.0, State.ON, State.STANDBY, "power", 1.0)],
            runs=[RunSummary("washer", 1010.0, 1200.0, 84.0, 2100.0)],
            snapshots={"tv": (1299.0, {"state": "on", "window": [1.5, float("nan")]})},
            kv={"rules_engine": {"timers": [1, 2]}},
        ))
    finally:
        store.close()


@pytest.fixture
def postgres_target(postgres_url: str) -> Iterator[str]:
    with scratch_schema(postgres_url) as url:
        yield url


def test_copy_from_sqlite_to_postgresql_keeps_every_row(
    tmp_path: Path, postgres_target: str, capsys: pytest.CaptureFixture[str],
) -> None:
    source = f"sqlite:///{tmp_path}/old.db"
    fill(source)
    assert main(["db", "copy", source, postgres_target]) == 0
    out = capsys.readouterr().out
    assert out.startswith("copied 607 rows (kv_state 1, plugs 2, readings 600, runs 1, "
                          "snapshots 1, transitions 2) from sqlite:///")
    old, new = open_store(source), open_store(postgres_target)
    try:
        assert list(new.transitions(plug="washer", since=0)) == list(
            old.transitions(plug="washer", since=0))
        assert list(new.runs(plug="washer", since=0)) == list(old.runs(plug="washer", since=0))
        assert list(new.readings("tv", since=None)) == list(old.readings("tv", since=None))
        assert new.load_kv("rules_engine") == {"rules_engine": {"timers": [1, 2]}}
        snap = new.load_snapshots()["tv"]
        assert snap[0] == 1299.0 and snap[1]["window"][0] == 1.5
        # ids stay in step with their sequences: the copy can be written to afterwards
        new.write_batch(Batch(transitions=[
            Transition("tv", 2000.0, State.ON, State.STANDBY, "power", 1.0)]))
        assert len(list(new.transitions(plug="tv", since=0))) == 1
    finally:
        old.close()
        new.close()


def test_copy_refuses_a_target_that_already_has_plugs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    source, target = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    fill(source)
    fill(target)
    assert main(["db", "copy", source, target]) == 1
    err = capsys.readouterr().err
    assert err == (f"plugwatch: error: {target} already holds 2 plug(s): db copy fills an empty "
                   "database only (create a new one, or drop its tables)\n")


def test_copy_from_a_missing_file_is_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "copy", f"sqlite:///{tmp_path}/nope.db", f"sqlite:///{tmp_path}/b.db"]) == 1
    assert capsys.readouterr().err == (
        f"plugwatch: error: sqlite:///{tmp_path}/nope.db: no such database file\n")
    assert not (tmp_path / "nope.db").exists()
