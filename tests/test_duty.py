"""Duty cycle of compressor runs: the share of time on, from real fridge and freezer days."""

from __future__ import annotations

import dataclasses

import pytest

from plugwatch.detect import replay
from plugwatch.detect.duty import duty_cycle
from plugwatch.detect.kinds import kind_named
from plugwatch.model import RunSummary
from plugwatch.traces.reader import CsvOptions, read_trace
from tests.conftest import TRACES


def run(start: float, end: float, open_: bool = False) -> RunSummary:
    return RunSummary("f", start, end, 1.0, 80.0, open=open_)


@pytest.mark.parametrize(("runs", "span", "expected"), [
    ([], (0, 100), 0.0),
    ([run(10, 30), run(50, 60)], (0, 100), 0.3),
    ([run(-50, 20)], (0, 100), 0.2),  # cut at the span's start
    ([run(90, 200, open_=True)], (0, 100), 0.1),  # an open run counts up to now
    ([run(10, 30), run(20, 40)], (0, 100), 0.3),  # overlaps count once
    ([run(10, 30)], (5, 5), 0.0),
])
def test_duty_cycle_by_hand(runs: list[RunSummary], span: tuple[float, float],
                            expected: float) -> None:
    assert duty_cycle(runs, *span) == pytest.approx(expected)


@pytest.mark.parametrize(("column", "kind", "on_w", "low", "high"), [
    ("Appliance1", "fridge", 30.0, 0.15, 0.6),  # REFIT 7 fridge
    ("Appliance2", "freezer", 30.0, 0.15, 0.6),  # REFIT 7 freezer (1)
])
def test_each_compressor_cycle_is_a_run_and_the_duty_cycle_is_plausible(
    column: str, kind: str, on_w: float, low: float, high: float
) -> None:
    """A real day: tens of compressor cycles, each a run of minutes, on a third of the time."""
    trace = read_trace(TRACES / "refit_day" / "house_7_day.csv", CsvOptions(power_col=column))
    settings = dataclasses.replace(kind_named(kind).settings(), on_w=on_w, on_band_w=5.0)
    runs = [e for e in replay("f", trace, settings) if isinstance(e, RunSummary)]
    assert len(runs) >= 15
    assert all(r.duration_s < 3 * 3600 for r in runs)
    assert low <= duty_cycle(runs, float(trace.ts[0]), float(trace.ts[-1])) <= high
