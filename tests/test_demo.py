"""`plugwatch demo` tells the whole story against emulated plugs and records it in SQLite."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from plugwatch.errors import ConfigError
from plugwatch.model import State
from plugwatch.service.demo import run_demo
from plugwatch.store import open_store
from plugwatch.testing import emulated_config
from tests.conftest import REPO

DEFAULT_DB = "plugwatch-demo.db"
DOCS_DEMO_OUTPUT = re.search(r"^```\n(plugwatch demo: .*?)^```", (REPO / "docs/service.md")
                             .read_text(), re.M | re.S).group(1)  # type: ignore[union-attr]


def _shape(text: str) -> list[str]:
    """The lines with every number made `N`: docs/service.md shows a run at the default speed."""
    return [re.sub(r"\d+(\.\d+)?", "N", line) for line in text.strip().splitlines()]


async def test_demo_shows_the_washer_run_the_tv_and_the_dropped_plug(tmp_path: Path) -> None:
    """At high speed the demo prints the washer's cycle with one run (the soak pause does not end
    it), the TV going on and back to standby, the fridge going unreachable and back, the two
    notifications its local inbox received over HTTP, and stores the same story in its database,
    in emulated time: the TV's half hour is a run of 30 min, not 30 real seconds."""
    lines: list[str] = []
    db = tmp_path / "demo.db"
    before = time.time()
    summary = await run_demo(speed=400.0, db_path=str(db), out=lines.append)
    after = time.time()
    text = "\n".join(lines)
    assert "washer  off -> standby" in text
    assert "washer  standby -> on" in text
    assert "washer  on -> standby" in text
    assert text.count("washer  run finished") == 1
    assert "tv      standby -> on" in text and "tv      on -> standby" in text
    assert "fridge  on -> unreachable" in text and "fridge  unreachable -> on" in text
    assert summary["runs"] == 2  # the washer and the TV
    assert summary["states"] == {"washer": "standby", "tv": "standby", "fridge": "on"}
    assert summary["notifications"] == 2
    # (when a message arrives depends on the machine's load: at x400 a real second is 7 minutes)
    assert re.search(r"^\[\d\d:\d\d\] inbox   notification: fridge is unreachable: fridge has "
                     r"not answered for \d+ min", text, re.M)
    assert re.search(r"^\[\d\d:\d\d\] inbox   notification: washer finished: Ran (39|40|41) min, "
                     r"used \d{3} Wh \(peak 20\d\d W\)\.$", text, re.M)
    assert re.search(r"tv      run finished: (28|29|30|31|32) min, 4\d Wh", text)
    assert "2 notifications" in lines[-5]
    # the docs show every line the demo prints (in an order a loaded machine may shuffle a little)
    shown = sorted(_shape("\n".join(lines).replace(str(db), DEFAULT_DB)))
    assert sorted(_shape(DOCS_DEMO_OUTPUT)) == shown
    store = open_store(f"sqlite:///{db}")
    try:
        washer = [t for t in store.transitions(plug="washer") if t.from_state != State.UNKNOWN]
        assert [t.to_state for t in washer] == [State.STANDBY, State.ON, State.STANDBY]
        assert len(store.runs(plug="washer")) == 1
        (tv_run,) = store.runs(plug="tv")
        assert 28 * 60 <= tv_run.duration_s <= 32 * 60  # emulated minutes, as the energy is
        # the story is dated to end when the demo ends, so it lies in the past for `status`
        first = min(t.ts for t in store.transitions())
        assert before - 80 * 60 - 5 <= first and max(r.end for r in store.runs()) <= after
        assert [a["status"] for a in store.alerts(since=0)] == ["sent", "sent"]
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
