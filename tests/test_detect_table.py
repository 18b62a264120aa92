"""The detector's transition table (fsm.TRANSITIONS), row by row, as a user sees each row happen.

Each row is driven from its source state by its trigger; the test checks the event (from, to,
reason, when) and what became of the run. docs/detector.md shows the same table (checked here).
"""

from __future__ import annotations

import pytest

from plugwatch.detect import REASONS, Detector
from plugwatch.detect.fsm import DWELLS, EDGES, TRANSITIONS, Edge, RunEffect, Trigger, dwell_of
from plugwatch.detect.levels import OFF, ON, STANDBY
from plugwatch.model import DetectorSettings, Event, ReadFailure, Reading, RunSummary, State
from plugwatch.model import Transition as T
from tests.conftest import REPO

SETTINGS = DetectorSettings(window_s=0, dwell_on_s=30.0, dwell_standby_s=180.0, dwell_off_s=120.0)
LEVEL_W = {OFF: 0.0, STANDBY: 2.0, ON: 500.0}
RUN_START = 200.0  # the run open when the source is on (or was on before the outage)


def steady(start: float, end: float, watts: float) -> list[Reading | ReadFailure]:
    return [Reading(start + 5.0 * i, watts) for i in range(round((end - start) / 5.0))]


def failures(start: float) -> list[Reading | ReadFailure]:
    return [ReadFailure(start + 5.0 * i, "timeout") for i in range(SETTINGS.unreachable_after)]


def into(source: State) -> list[Reading | ReadFailure]:
    """Readings up to t = 300 s that leave a fresh detector in `source`."""
    if source is State.UNKNOWN:
        return []
    if source is State.UNREACHABLE:  # on (a run from 200 s), then silent from 300 s
        return [*into(State.ON)[:-1], *failures(300.0)]
    if source is State.ON:
        return steady(0, RUN_START, 0.0) + steady(RUN_START, 305, 500.0)
    return steady(0, 305, LEVEL_W[OFF if source is State.OFF else STANDBY])


def trigger(edge: Edge) -> tuple[list[Reading | ReadFailure], float]:
    """The samples (from t = 600 s) that make `edge` happen, and when it should be stamped."""
    t = 600.0 if edge.source is not State.UNKNOWN else 0.0
    if edge.trigger is Trigger.RELAY_OFF:
        return [Reading(t, 0.0, relay_on=False)], t
    if edge.trigger is Trigger.FAILURES:
        return failures(t), t
    assert edge.level is not None
    if edge.trigger is Trigger.LEVEL:  # the level, held past its state's dwell
        return steady(t, t + dwell_of(SETTINGS, edge.target) + 30, LEVEL_W[edge.level]), t
    return [Reading(t, LEVEL_W[edge.level])], t  # FIRST, RECOVERED: one reading decides


def bridge(edge: Edge) -> list[Reading | ReadFailure]:
    """The source state held from 305 s up to 600 s (nothing for unknown and unreachable)."""
    if edge.source in (State.UNKNOWN, State.UNREACHABLE):
        return []
    watts = {State.OFF: 0.0, State.STANDBY: 2.0, State.ON: 500.0}[edge.source]
    return steady(305, 600, watts)


@pytest.mark.parametrize("edge", TRANSITIONS, ids=[
    f"{e.source}-{e.trigger.name.lower()}-{e.target}" for e in TRANSITIONS])
def test_every_row_happens_as_the_table_says(edge: Edge) -> None:
    detector = Detector("p", SETTINGS)
    before: list[Event] = []
    for sample in into(edge.source) + bridge(edge):
        before += detector.feed(sample)
    assert detector.state is edge.source
    samples, stamp = trigger(edge)
    events: list[Event] = []
    for sample in samples:
        events += detector.feed(sample)
    power = None if edge.trigger is Trigger.FAILURES else LEVEL_W.get(edge.level or OFF)
    assert [e for e in events if isinstance(e, T)] == [
        T("p", stamp, edge.source, edge.target, edge.reason, power)]
    assert detector.state is edge.target
    runs = [e for e in events if isinstance(e, RunSummary)]
    run = detector.open_run()
    if edge.run is RunEffect.NONE:
        assert (runs, run) == ([], None)
    elif edge.run is RunEffect.OPENS:
        assert runs == [] and run is not None and run.start == stamp
    elif edge.run in (RunEffect.ENDS_AT_DROP, RunEffect.ENDS_HERE, RunEffect.ENDS_AT_OUTAGE):
        end = 300.0 if edge.run is RunEffect.ENDS_AT_OUTAGE else stamp
        assert [(r.start, r.end) for r in runs] == [(RUN_START, end)] and run is None
    else:  # STAYS_OPEN (no run while unreachable), then GOES_ON: still the run from 200 s
        assert edge.run in (RunEffect.STAYS_OPEN, RunEffect.GOES_ON) and runs == []
        after = detector.feed(Reading(stamp + 300, 500.0))
        assert [e for e in after if isinstance(e, RunSummary)] == []
        run = detector.open_run()
        assert run is not None and run.start == RUN_START


def test_the_table_is_complete_and_consistent() -> None:
    """One row per (source, trigger, target); every level has a first state; all rows into a
    state wait the same dwell; the reasons are REASONS; only the level rows wait."""
    assert len(EDGES) == len(TRANSITIONS)
    assert {e.level for e in TRANSITIONS if e.trigger is Trigger.FIRST} == {OFF, STANDBY, ON}
    for e in TRANSITIONS:
        assert (e.dwell is None) is (e.trigger is not Trigger.LEVEL), e
        assert e.dwell is None or DWELLS[e.target] == e.dwell, e
    assert set(REASONS) == {e.reason for e in TRANSITIONS}
    # every state can be left, except to itself; unreachable is reached from every other one
    sources = {e.source for e in TRANSITIONS}
    assert sources == set(State)
    assert {e.source for e in TRANSITIONS if e.target is State.UNREACHABLE} == \
        set(State) - {State.UNREACHABLE}


def markdown() -> str:
    """TRANSITIONS as the table in docs/detector.md."""
    names = {OFF: "off", STANDBY: "standby", ON: "on", None: "-"}
    lines = ["| from | trigger | level | to | dwell | reason | run |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {e.source} | {e.trigger} | {names[e.level]} | {e.target} | "
              f"{e.dwell or 'at once'} | `{e.reason}` | {e.run} |" for e in TRANSITIONS]
    return "\n".join(lines)


def test_the_docs_show_the_table() -> None:
    doc = (REPO / "docs" / "detector.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- transitions begin -->\n")[1].split("<!-- transitions end -->")[0]
    assert shown.strip() == markdown(), "paste: .venv/bin/python -m tests.test_detect_table"


if __name__ == "__main__":
    print(markdown())
