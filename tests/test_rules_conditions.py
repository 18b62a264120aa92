"""Rules on more than a transition: duty cycle over a window, no run for N days, unusual runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules import Rule, RulesEngine
from plugwatch.rules.conditions import OnSpans, usual_range
from plugwatch.rules.replay import replay_alerts

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp()
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


def rule(**kw: Any) -> Rule:
    kw.setdefault("name", "r")
    kw.setdefault("notify", ["phone"])
    return Rule.model_validate(kw)


def tr(plug: str, ts: float, a: str, b: str) -> Transition:
    return Transition(plug, ts, State(a), State(b), "power", 1.0)


def compressor(plug: str, start: float, hours: float, on_min: float, off_min: float) -> list:
    """A freezer's compressor cycling on/off for `hours`: on_min on, off_min off."""
    events, t = [], start
    while t < start + hours * HOUR:
        events += [tr(plug, t, "off", "on"), tr(plug, t + on_min * MIN, "on", "off")]
        t += (on_min + off_min) * MIN
    return events


def test_on_spans_share_of_a_window() -> None:
    spans = OnSpans()
    spans.enter_on(0)
    spans.leave_on(600)
    spans.enter_on(1800)  # still on
    assert spans.share(3600, 3600) == pytest.approx((600 + 1800) / 3600)
    assert spans.share(3600, 1200) == pytest.approx(1.0)  # on for the whole last 20 min


def test_usual_range_is_median_and_robust_spread_with_a_floor() -> None:
    low, median, high = usual_range([800, 810, 790, 805, 795, 2000], spread=3)
    assert median == pytest.approx(802.5) and 800 < high < 2000  # the outlier is outside
    low, median, high = usual_range([500.0] * 6, spread=3)  # all alike: 10 % either side
    assert (low, high) == pytest.approx((450.0, 550.0))


def test_a_freezer_running_too_much_is_reported_and_resolves_when_it_calms_down() -> None:
    """Duty cycle above 60 % over 6 h: 20 min on / 10 min off (67 %) fires; 10/20 resolves."""
    r = rule(name="freezer-duty", plugs=["freezer"],
             when={"duty_cycle": {"above": "60%", "over": "6h"}}, repeat="2h",
             body="{{ duty.percent }} % over {{ duty.over }}")
    events = compressor("freezer", T0, 12, 20, 10) + compressor("freezer", T0 + 12 * HOUR, 12,
                                                                 10, 20)
    alert, *reminders = replay_alerts([r], events)
    # reminders every 2 h while above; 1.2 h into the calm cycles it is below 60 %: resolved
    assert [round((a.created_at - alert.created_at) / HOUR) for a in reminders] == [2, 4, 6]
    # 2/3 of the time on: above 60 % of 6 h once 3.6 h of it were on (5.4 h after the start)
    assert T0 + 5 * HOUR < alert.created_at < T0 + 6 * HOUR
    assert alert.title == "freezer runs 61.1 % of the time"
    assert 60 < float(alert.body.split(" %")[0]) < 70 and alert.body.endswith("over 6 h")


def test_a_normal_freezer_never_fires() -> None:
    r = rule(name="freezer-duty", when={"duty_cycle": {"above": 60, "over": "6h"}})
    assert replay_alerts([r], compressor("freezer", T0, 48, 10, 20)) == []


def test_duty_cycle_state_survives_a_restart() -> None:
    r = rule(name="duty", when={"duty_cycle": {"above": 50, "over": "1h"}})
    engine = RulesEngine([r])
    engine.on_transition(tr("f", T0, "off", "on"))  # on from now on
    again = RulesEngine.restore([r], engine.snapshot())
    fired = []
    while (due := again.next_due()) is not None and due <= T0 + HOUR:
        fired += again.due(due)
    assert len(fired) == 1 and T0 + 30 * MIN < fired[0].created_at <= T0 + 36 * MIN


def test_no_run_for_fires_after_the_last_run_and_a_run_resolves_it() -> None:
    r = rule(name="sump", plugs=["pump"], when={"no_run_for": "3d"}, repeat="1d",
             body="last ran {{ last_run | time }} ({{ duration }} ago), #{{ repeat }}")
    engine = RulesEngine([r], plug_tags={"pump": []})
    engine.watch(["pump"], T0 + HOUR, {"pump": T0})
    assert engine.due(T0 + 3 * DAY - 1) == []
    (alert,) = engine.due(T0 + 3 * DAY)
    assert alert.body == "last ran 5 Jan 12:00 (3 d ago), #0"
    engine.on_transition(tr("pump", T0 + 3 * DAY + HOUR, "off", "on"))  # it ran: resolved
    engine.on_transition(tr("pump", T0 + 3 * DAY + 2 * HOUR, "on", "off"))
    assert engine.due(T0 + 6 * DAY) == []
    assert len(engine.due(T0 + 6 * DAY + 2 * HOUR)) == 1  # counted from the new run's end


def test_no_run_for_a_plug_never_seen_running_counts_from_the_start() -> None:
    engine = RulesEngine([rule(when={"no_run_for": "2d"})], plug_tags={"pump": []})
    engine.watch(["pump"], T0)
    assert engine.next_due() == T0 + 2 * DAY


def runs(durations_min: list[float], energy: list[float]) -> list:
    """on -> standby transitions with their runs, one a day."""
    events = []
    for i, (d, e) in enumerate(zip(durations_min, energy, strict=True)):
        end = T0 + i * DAY
        events += [tr("washer", end - d * MIN, "standby", "on"), tr("washer", end, "on", "standby"),
                   RunSummary("washer", end - d * MIN, end, e, 2000.0)]
    return events


def test_an_unusual_run_is_reported_with_the_usual_range() -> None:
    r = rule(name="odd", plugs=["washer"], when={"unusual_run": {"by": "energy", "last": 10}},
             body="{{ run.energy_wh | energy }}, usually {{ usual.text }}")
    usual = [800, 820, 790, 810, 805, 795]
    alerts = replay_alerts([r], runs([90] * 8, [*usual, 1900, 800]))
    (alert,) = alerts
    assert alert.body.startswith("1.90 kWh, usually ") and alert.created_at == T0 + 6 * DAY


def test_no_verdict_before_enough_runs_and_by_duration() -> None:
    r = rule(name="odd", when={"unusual_run": {"by": "duration", "min_runs": 5}},
             body="{{ run.duration }} vs {{ usual.text }}")
    assert replay_alerts([r], runs([90, 90, 300, 90], [800] * 4)) == []
    (alert,) = replay_alerts([r], runs([90, 92, 88, 91, 89, 30], [800] * 6))
    assert alert.body == "30 min vs 1 h 21 min to 1 h 39 min"  # at least 10 % either side


@pytest.mark.parametrize(
    ("when", "problem"),
    [({"duty_cycle": {"above": 160, "over": "6h"}}, "less than 100"),
     ({"duty_cycle": {"above": 60}}, "over"),
     ({"to": "on", "no_run_for": "3d"}, "one trigger per rule"),
     ({"no_run_for": "3d", "from": "on"}, "`from` and `min_duration` go with `to:`"),
     ({}, "say what triggers the rule")],
)
def test_condition_mistakes_are_named(when: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        rule(when=when)
