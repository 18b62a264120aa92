"""`plugwatch demo` tells the whole story against emulated plugs and records it in SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugwatch.errors import ConfigError
from plugwatch.model import State
from plugwatch.service.demo import run_demo
from plugwatch.store import open_store
from plugwatch.testing import emulated_config


async def test_demo_shows_the_washer_run_the_tv_and_the_dropped_plug(tmp_path: Path) -> None:
    """At high speed the demo prints the washer's cycle with one run (the soak pause does not end
    it), the TV going on and back to standby, the fridge going unreachable and back, and stores
    the same transitions in its database."""
    lines: list[str] = []
    db = tmp_path / "demo.db"
    summary = await run_demo(speed=400.0, db_path=str(db), out=lines.append)
    text = "\n".join(lines)
    assert "washer  off -> standby" in text
    assert "washer  standby -> on" in text
    assert "washer  on -> standby" in text
    assert text.count("washer  run finished") == 1
    assert "tv      standby -> on" in text and "tv      on -> standby" in text
    assert "fridge  on -> unreachable" in text and "fridge  unreachable -> on" in text
    assert summary["runs"] == 2  # the washer and the TV
    assert summary["states"] == {"washer": "standby", "tv": "standby", "fridge": "on"}
    store = open_store(f"sqlite:///{db}")
    try:
        washer = [t for t in store.transitions(plug="washer") if t.from_state != State.UNKNOWN]
        assert [t.to_state for t in washer] == [State.STANDBY, State.ON, State.STANDBY]
        assert len(store.runs(plug="washer")) == 1
    finally:
        store.close()


async def test_demo_refuses_a_database_that_is_not_a_demo_one(tmp_path: Path) -> None:
    """--db pointing at a real database is an error, and the file is left alone."""
    db = tmp_path / "real.db"
    store = open_store(f"sqlite:///{db}")
    store.ensure_plugs(emulated_config({"freezer": 9999}, "sqlite://").plugs)
    store.close()
    with pytest.raises(ConfigError, match=r"is not a demo database .*freezer.*choose another --db"):
        await run_demo(speed=400.0, db_path=str(db), out=lambda line: None)
    assert db.exists()
