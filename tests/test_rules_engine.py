"""The rules engine: triggers, min_duration, for (and its cancel), repeat, cooldown, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules import Rule, RulesEngine

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp()  # a Monday, noon UTC
MIN = 60.0


def rule(**kw: Any) -> Rule:
    """A rule from YAML-like keys (aliases such as `for` and `from` included)."""
    kw.setdefault("name", "r")
    kw.setdefault("notify", ["phone"])
    return Rule.model_validate(kw)


def tr(plug: str, ts: float, a: str, b: str) -> Transition:
    return Transition(plug, ts, State(a), State(b), "power", 1.0)


def test_washer_done_needs_min_duration_and_carries_the_run() -> None:
    """A run shorter than min_duration is silent; a long one fires with its figures in the body."""
    r = rule(name="washer-done", plugs=["washer"], when={"from": "on", "to": ["standby", "off"],
             "min_duration": "10m"}, title="{{ plug }} finished",
             body="Ran {{ run.duration }}, used {{ run.energy_kwh | round(2) }} kWh")
    engine = RulesEngine([r])
    short = RunSummary("washer", T0, T0 + 5 * MIN, 50.0, 2000.0)
    assert engine.on_transition(tr("washer", T0 + 5 * MIN, "on", "standby"), short) == []
    run = RunSummary("washer", T0 + 10 * MIN, T0 + 70 * MIN, 1234.0, 2100.0)
    alerts = engine.on_transition(tr("washer", T0 + 70 * MIN, "on", "standby"), run, T0 + 73 * MIN)
    expected = ("washer finished", "Ran 1 h, used 1.23 kWh")
    assert [(a.title, a.body) for a in alerts] == [expected]
    assert alerts[0].due_at == alerts[0].created_at == T0 + 73 * MIN


def test_on_events_pairs_the_run_with_its_transition() -> None:
    """The detector emits the RunSummary next to the on->standby transition: the body sees it."""
    engine = RulesEngine([rule(when={"from": "on", "to": "standby"}, body="{{ run.peak_w }}")])
    events = [tr("washer", T0, "on", "standby"), RunSummary("washer", T0 - 600, T0, 10.0, 99.0)]
    assert [a.body for a in engine.on_events(events, T0 + 180)] == ["99.0"]


def test_for_fires_only_if_the_state_holds_and_is_cancelled_when_it_leaves() -> None:
    engine = RulesEngine([rule(plugs={"tags": ["critical"]}, when={"to": "unreachable"},
                               **{"for": "5m"})], plug_tags={"freezer": ["critical"]})
    assert engine.on_transition(tr("freezer", T0, "on", "unreachable"), now=T0 + 10) == []
    assert engine.due(T0 + 4 * MIN) == []
    engine.on_transition(tr("freezer", T0 + 4 * MIN, "unreachable", "on"))  # back: cancelled
    assert engine.due(T0 + 60 * MIN) == [] and engine.next_due() is None
    engine.on_transition(tr("freezer", T0 + 70 * MIN, "on", "unreachable"))
    fired = engine.due(T0 + 75 * MIN)
    assert [a.plug for a in fired] == ["freezer"]
    assert engine.due(T0 + 80 * MIN) == []  # fires once


def test_plugs_not_selected_never_fire() -> None:
    engine = RulesEngine([rule(plugs=["freezer-*"], when={"to": "unreachable"})])
    assert engine.on_transition(tr("tv", T0, "on", "unreachable")) == []
    assert len(engine.on_transition(tr("freezer-cellar", T0, "on", "unreachable"))) == 1


def test_repeat_reminds_at_most_max_repeats_times() -> None:
    engine = RulesEngine([rule(when={"to": "unreachable"}, repeat="1h", max_repeats=2,
                               notify=["phone", "mail"], body="#{{ repeat }}")])
    first = engine.on_transition(tr("f", T0, "on", "unreachable"))
    assert [(a.target, a.body) for a in first] == [("phone", "#0"), ("mail", "#0")]
    bodies = [a.body for h in range(1, 6) for a in engine.due(T0 + h * 3600) if a.target == "phone"]
    assert bodies == ["#1", "#2"]
    assert len({a.dedupe_key for a in first}) == 2


def test_cooldown_suppresses_a_second_alert_soon_after_the_first() -> None:
    engine = RulesEngine([rule(when={"from": "on", "to": "standby"}, cooldown="30m")])
    assert len(engine.on_transition(tr("w", T0, "on", "standby"))) == 1
    engine.on_transition(tr("w", T0 + 5 * MIN, "standby", "on"))
    assert engine.on_transition(tr("w", T0 + 10 * MIN, "on", "standby")) == []
    engine.on_transition(tr("w", T0 + 20 * MIN, "standby", "on"))
    assert len(engine.on_transition(tr("w", T0 + 40 * MIN, "on", "standby"))) == 1


def test_quiet_hours_defer_moves_due_at_to_the_end_of_the_window() -> None:
    quiet = {"from": "22:00", "to": "07:00", "action": "defer", "tz": "Europe/Berlin"}
    engine = RulesEngine([rule(when={"to": "on"}, quiet_hours=quiet)])
    night = datetime(2026, 1, 5, 23, 30, tzinfo=UTC).timestamp()  # 00:30 in Berlin
    (alert,) = engine.on_transition(tr("iron", night, "off", "on"))
    assert alert.status == "pending"
    assert alert.due_at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC).timestamp()  # 07:00 Berlin
    (day,) = engine.on_transition(tr("tv", T0, "off", "on"))
    assert day.due_at == T0


def test_quiet_hours_drop_marks_the_alert_dropped() -> None:
    engine = RulesEngine([rule(when={"to": "on"}, quiet_hours={"from": 22 * 60, "to": "07:00",
                                                               "action": "drop"})])
    (alert,) = engine.on_transition(tr("iron", T0 - 13 * 3600, "off", "on"))  # 23:00 UTC
    assert alert.status == "dropped"


def test_snapshot_restore_keeps_pending_timers_and_never_refires() -> None:
    """A restart between the transition and the `for:` time still fires once, at the right time."""
    rules = [rule(when={"to": "unreachable"}, **{"for": "5m"}, repeat="1h", max_repeats=1)]
    engine = RulesEngine(rules)
    engine.on_transition(tr("f", T0, "on", "unreachable"))
    snap = engine.snapshot()
    again = RulesEngine.restore(rules, snap)
    assert again.due(T0 + 4 * MIN) == []
    first = again.due(T0 + 5 * MIN)
    after = RulesEngine.restore(rules, again.snapshot())
    assert after.due(T0 + 6 * MIN) == []
    assert [a.dedupe_key for a in after.due(T0 + 66 * MIN)] != [a.dedupe_key for a in first]
    assert RulesEngine.restore([], snap).next_due() is None  # a removed rule's timers are gone


def test_a_broken_template_still_delivers_the_default_text() -> None:
    engine = RulesEngine([rule(when={"to": "on"}, title="{{ run.duration }}")])
    (alert,) = engine.on_transition(tr("tv", T0, "off", "on"))
    assert alert.title == "tv: off -> on"


def test_a_dwell_longer_than_for_fires_at_confirmation() -> None:
    """The state began 10 min before the detector confirmed it: `for: 5m` is already over."""
    engine = RulesEngine([rule(when={"to": "standby"}, **{"for": "5m"})])
    (alert,) = engine.on_transition(tr("w", T0, "on", "standby"), now=T0 + 600)
    assert alert.created_at == T0 + 600


def test_reminders_keep_their_numbers_when_the_service_was_down() -> None:
    """One overdue reminder is sent, the other missed slots are skipped (no burst)."""
    engine = RulesEngine([rule(when={"to": "unreachable"}, repeat="1h", body="#{{ repeat }}")])
    engine.on_transition(tr("f", T0, "on", "unreachable"))
    assert [a.body for a in engine.due(T0 + 3.5 * 3600)] == ["#1"]
    assert engine.next_due() == T0 + 4 * 3600
    assert [a.body for a in engine.due(T0 + 4 * 3600)] == ["#4"]


def test_leaving_for_another_matching_state_keeps_the_timer() -> None:
    """to: [standby, off]: standby -> off is still 'in the state', the `for:` keeps running."""
    engine = RulesEngine([rule(when={"from": "on", "to": ["standby", "off"]}, **{"for": "10m"})])
    engine.on_transition(tr("w", T0, "on", "standby"))
    engine.on_transition(tr("w", T0 + 60, "standby", "off"))
    assert len(engine.due(T0 + 600)) == 1
