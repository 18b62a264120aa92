"""`plugwatch demo` tells the whole story against emulated plugs and records it in SQLite."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plugwatch.errors import ConfigError
from plugwatch.model import State
from plugwatch.service.demo import STORY_MIN, run_demo
from plugwatch.store import open_store
from plugwatch.testing import emulated_config
from tests.conftest import REPO

DEFAULT_DB = "plugwatch-demo.db"
DOCS_DEMO_OUTPUT = re.search(r"^```\n(plugwatch demo: .*?)^```", (REPO / "docs/service.md")
                             .read_text(), re.M | re.S).group(1)  # type: ignore[union-attr]


def _shape(text: str) -> list[str]:
    """The lines with every number made `N` and every duration `D` (`N min`, `N min N s`: when a
    message goes depends on the machine's load): docs/service.md shows a run at the default
    speed."""
    numbers = (re.sub(r"\d+(\.\d+)?", "N", line) for line in text.strip().splitlines())
    return [re.sub(r"N (h|min|s)\b( N (min|s)\b)*", "D", line) for line in numbers]


def demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """`plugwatch demo ARGS --db tmp/demo.db` as a person runs it: (its result, wall seconds)."""
    before = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "plugwatch", "demo", *args, "--db",
                           str(tmp_path / "demo.db")], capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - before


def test_demo_shows_the_washer_run_the_tv_and_the_dropped_plug(tmp_path: Path) -> None:
    """At x400 the 80-minute story takes 12 s (as it says, and as docs/service.md's run at x60
    takes 80 s): the washer's cycle with one run (the soak pause does not end it), the TV going on
    and back to standby, the fridge going unreachable and back, the two notifications its local
    inbox received over HTTP, every line in emulated time and nothing on stderr; its database
    holds the same story in emulated time: the TV's half hour is a run of 30 min, not 30 real
    seconds."""
    db = tmp_path / "demo.db"
    before = time.time()
    proc, took = demo(tmp_path, "--speed", "400")
    after = time.time()
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    lines = text.splitlines()
    assert lines[1].startswith("emulated time runs x400: the 80-minute story takes 12 s ")
    assert 12 <= took < 60  # its 12 s and the start of a Python process on a loaded machine
    (finished,) = [line for line in lines if line.startswith("demo finished after ")]
    assert re.match(r"demo finished after 1[234] s \(1 h 20 min emulated\): 7 transitions, "
                    r"2 runs, 2 notifications$", finished), finished
    assert "washer  off -> standby" in text
    assert "washer  standby -> on" in text
    assert "washer  on -> standby" in text
    assert len(re.findall(r"washer  run finished: (39|40|41) min, 0\.\d\d kWh ", text)) == 1
    assert "tv      standby -> on" in text and "tv      on -> standby" in text
    assert "fridge  on -> unreachable" in text and "fridge  unreachable -> on" in text
    assert lines[-4:-1] == ["  washer  standby      since " + lines[-4][-5:],
                            "  tv      standby      since " + lines[-3][-5:],
                            "  fridge  on           since " + lines[-2][-5:]]
    # (when a message arrives depends on the machine's load: at x400 a real second is 7 minutes)
    assert re.search(r"^\[\d\d:\d\d\] inbox   notification: fridge is unreachable: fridge has "
                     r"not answered for \d+ min", text, re.M)
    assert re.search(r"^\[\d\d:\d\d\] inbox   notification: washer finished: Ran (39|40|41) min, "
                     r"used 0\.\d\d kWh \(peak 20\d\d W\)\.$", text, re.M)
    assert re.search(r"tv      run finished: (28|29|30|31|32) min, 4\d Wh", text)  # as history
    # the docs show every line the demo prints (in an order a loaded machine may shuffle a little)
    shown = sorted(_shape(text.replace(str(db), DEFAULT_DB)))
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


def test_the_docs_say_how_long_the_demo_takes() -> None:
    """README and docs/service.md give the default run's real time: the story's emulated
    minutes at the default speed (one emulated minute per second)."""
    default_s = STORY_MIN * 60 / inspect.signature(run_demo).parameters["speed"].default
    assert default_s == 80
    assert "emulated time runs x60: the 80-minute story takes 80 s " in DOCS_DEMO_OUTPUT
    assert "demo finished after 80 s (1 h 20 min emulated)" in DOCS_DEMO_OUTPUT
    assert re.search(r"^plugwatch demo +# 80 s ", (REPO / "docs/service.md").read_text(), re.M)
    assert re.search(r"^plugwatch demo  .*: 80 s$", (REPO / "README.md").read_text(), re.M)


def test_with_v_the_demo_shows_the_services_own_warnings(tmp_path: Path) -> None:
    """The fridge's outage (emulated minutes 26 to 36) is also in the service's log with -v:
    6 s at x400 reach past its start."""
    proc, _ = demo(tmp_path, "-v", "--speed", "400", "--duration", "6")
    assert proc.returncode == 0, proc.stderr
    assert "fridge  on -> unreachable" in proc.stdout
    assert "WARNING plugwatch.plugs: plug fridge is unreachable after 3 failed reads" in proc.stderr


async def test_demo_refuses_a_database_that_is_not_a_demo_one(tmp_path: Path) -> None:
    """--db pointing at a real database is an error, and the file is left alone."""
    db = tmp_path / "real.db"
    store = open_store(f"sqlite:///{db}")
    store.ensure_plugs(emulated_config({"freezer": 9999}, "sqlite://").plugs)
    store.close()
    with pytest.raises(ConfigError, match=r"is not a demo database .*freezer.*choose another --db"):
        await run_demo(speed=400.0, db_path=str(db), out=lambda line: None)
    assert db.exists()
