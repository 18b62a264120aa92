"""Reminders until acknowledged, silences, inhibition (`unless:`) and grouping, in the pure engine.

The semantics follow Alertmanager's where they apply (docs/rules.md, "No storms"): a silenced or
inhibited alert is recorded, not sent, and goes out when the silence ends or the inhibiting alert
resolves if it is still active; a group waits `group_wait` for more members, then sends one
message; reminders of a group travel together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plugwatch.model import RunSummary, State, Transition
from plugwatch.rules import Rule, RulesEngine
from plugwatch.rules.controls import Ack, Silence

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp()
MIN = 60.0


def rule(**kw: Any) -> Rule:
    kw.setdefault("name", "r")
    kw.setdefault("notify", ["phone"])
    return Rule.model_validate(kw)


def tr(plug: str, ts: float, a: str, b: str) -> Transition:
    return Transition(plug, ts, State(a), State(b), "power", 1.0)


def sent(alerts: list) -> list[tuple[str, str]]:
    """(plug, body) of the alerts that will be delivered."""
    return [(a.plug, a.body) for a in alerts if a.status == "pending"]


def washer_done(**kw: Any) -> Rule:
    return rule(name="washer-done", when={"from": "on", "to": ["standby", "off"]},
                repeat="15m", body="#{{ repeat }}", **kw)


def test_reminders_repeat_until_acknowledged_and_an_ack_is_not_undone_by_a_restart() -> None:
    engine = RulesEngine([washer_done()])
    assert sent(engine.on_transition(tr("washer", T0, "on", "standby"))) == [("washer", "#0")]
    assert sent(engine.due(T0 + 15 * MIN)) == [("washer", "#1")]
    assert engine.acknowledge(Ack(1, T0 + 20 * MIN, plug="washer")) == [("washer-done", "washer")]
    again = RulesEngine.restore([washer_done()], engine.snapshot())
    assert again.due(T0 + 10 * 3600) == [] and again.next_due() is None
    assert again.acks_seen == 1
    (row,) = again.active()  # still active (the washer is still in standby), but acknowledged
    assert row["acked_at"] == T0 + 20 * MIN and row["next"] is None


def test_an_ack_older_than_the_alert_does_not_acknowledge_it() -> None:
    """An acknowledgement applied late (after a restart) covers only alerts it could have seen."""
    engine = RulesEngine([washer_done()])
    engine.on_transition(tr("washer", T0, "on", "standby"))
    assert engine.acknowledge(Ack(5, T0 - 1, rule="washer-done")) == []
    assert sent(engine.due(T0 + 15 * MIN)) == [("washer", "#1")]


def test_the_appliances_own_next_state_acknowledges() -> None:
    """ack_when: off: the washer switched off (someone emptied it) stops the reminders, though
    off is still one of the rule's states (the alert stays active)."""
    engine = RulesEngine([washer_done(ack_when="off")])
    engine.on_transition(tr("washer", T0, "on", "standby"))
    engine.on_transition(tr("washer", T0 + 5 * MIN, "standby", "off"))
    assert engine.due(T0 + 2 * 3600) == []
    assert engine.active()[0]["acked_at"] == T0 + 5 * MIN


def test_leaving_the_state_resolves_and_stops_reminders() -> None:
    engine = RulesEngine([rule(when={"to": "unreachable"}, repeat="1h")])
    engine.on_transition(tr("freezer", T0, "on", "unreachable"))
    engine.on_transition(tr("freezer", T0 + 30 * MIN, "unreachable", "on"))
    assert engine.due(T0 + 5 * 3600) == [] and engine.active() == []


def test_a_silence_records_the_alert_and_sends_it_when_it_expires() -> None:
    engine = RulesEngine([rule(name="tv-on", when={"to": "on"}, body="on")])
    engine.silences = [Silence(1, "plug", "tv", T0 - 60, T0 + 2 * 3600)]
    (row,) = engine.on_transition(tr("tv", T0, "off", "on"))
    assert (row.status, row.due_at) == ("silenced", T0 + 2 * 3600)
    assert engine.due(T0 + 3600) == []
    assert engine.next_due() == T0 + 2 * 3600
    engine.silences = []  # the caller hands over the silences in force
    assert sent(engine.due(T0 + 2 * 3600)) == [("tv", "on")]
    assert engine.due(T0 + 5 * 3600) == []


def test_a_silence_of_a_rule_or_tag_covers_it_and_a_resolved_alert_is_never_sent() -> None:
    engine = RulesEngine([rule(name="tv-on", when={"to": "on"})], plug_tags={"tv": ["living"]})
    engine.silences = [Silence(1, "tag", "living", T0, T0 + 3600)]
    assert sent(engine.on_transition(tr("tv", T0, "off", "on"))) == []
    engine.on_transition(tr("tv", T0 + 60, "on", "off"))  # off again during the silence
    assert engine.due(T0 + 7200) == []
    engine.silences = [Silence(2, "rule", "tv-*", T0, T0 + 3600)]
    assert sent(engine.on_transition(tr("tv", T0 + 120, "off", "on"))) == []


def test_unless_inhibits_while_the_other_alert_is_active_and_releases_after() -> None:
    """No "left on" for the TV while its plug's unreachable alert is active; when the TV comes
    back still on, the held alert goes out."""
    unreachable = rule(name="unreachable", when={"to": "unreachable"})
    left_on = rule(name="left-on", when={"to": ["on", "unreachable"]}, unless="unreachable",
                   body="left on", **{"for": "10m"})  # unreachable while on keeps its timer
    engine = RulesEngine([unreachable, left_on])
    engine.on_transition(tr("tv", T0, "off", "on"))
    engine.on_transition(tr("tv", T0 + 5 * MIN, "on", "unreachable"))  # unreachable fires
    held = engine.due(T0 + 10 * MIN)
    assert [(a.rule, a.status) for a in held] == [("left-on", "inhibited")]
    assert engine.due(T0 + 15 * MIN) == []  # held, not retried by the clock
    back = engine.on_events([tr("tv", T0 + 20 * MIN, "unreachable", "on")], T0 + 20 * MIN)
    assert [(a.rule, a.status, a.body) for a in back] == [("left-on", "pending", "left on")]


def test_unless_any_plug_inhibits_every_plug() -> None:
    """same_plug: false: while the router is unreachable, no plug's unreachable alert goes out."""
    router = rule(name="router-down", plugs=["router"], when={"to": "unreachable"})
    others = rule(name="unreachable", plugs=["freezer", "tv"], when={"to": "unreachable"},
                  unless={"rule": "router-down", "same_plug": False})
    engine = RulesEngine([router, others])
    assert [a.rule for a in engine.on_transition(tr("router", T0, "on", "unreachable"))] == [
        "router-down"]
    assert [a.status for a in engine.on_transition(tr("freezer", T0, "on", "unreachable"))] == [
        "inhibited"]
    engine.on_transition(tr("router", T0 + 60, "unreachable", "on"))  # router back: released
    assert sent(engine.due(T0 + 60)) == [("freezer", "freezer is unreachable since 12:00 (was "
                                          "on for unknown time).")]


def test_a_power_cut_is_one_message_listing_every_plug() -> None:
    """group_by: rule, group_wait: 1m: twelve plugs unreachable within a minute -> one alert."""
    r = rule(name="power-cut", when={"to": "unreachable"}, group_by="rule", group_wait="1m",
             title="{{ plug }} unreachable", repeat="1h", notify=["phone", "mail"])
    engine = RulesEngine([r])
    plugs = [f"plug{i:02d}" for i in range(12)]
    for i, plug in enumerate(plugs):
        assert engine.on_transition(tr(plug, T0 + i * 4, "on", "unreachable")) == []
    assert engine.due(T0 + 59) == []
    first = engine.due(T0 + 60)
    assert [(a.target, a.plug) for a in first] == [("phone", "plug00+11"), ("mail", "plug00+11")]
    assert first[0].title == "12 plugs unreachable: " + ", ".join(plugs)
    assert first[0].body.splitlines() == [f"{p} unreachable" for p in plugs]
    # one comes back; the reminder an hour later lists the other eleven, once
    engine.on_transition(tr("plug03", T0 + 600, "unreachable", "on"))
    reminder = engine.due(T0 + 3660)
    assert len(reminder) == 2 and reminder[0].title.startswith("11 plugs unreachable: ")
    assert len({a.dedupe_key for a in first + reminder}) == 4


def test_grouping_by_tag_and_a_late_member_waits_for_the_next_message() -> None:
    r = rule(name="down", plugs={"tags": ["cellar", "kitchen"]}, when={"to": "unreachable"},
             group_by="tag", group_wait="30s")
    tags = {"freezer": ["cellar"], "pump": ["cellar"], "fridge": ["kitchen"]}
    engine = RulesEngine([r], plug_tags=tags)
    for plug in tags:
        engine.on_transition(tr(plug, T0, "on", "unreachable"))
    first = engine.due(T0 + 30)
    assert sorted(a.plug for a in first) == ["freezer+1", "fridge"]  # one message per tag
    engine.on_transition(tr("heater", T0 + 40, "on", "unreachable"))  # not selected
    assert engine.due(T0 + 100) == []


def test_a_group_waiting_to_send_survives_a_restart() -> None:
    r = rule(name="power-cut", when={"to": "unreachable"}, group_by="rule", group_wait="1m")
    engine = RulesEngine([r])
    engine.on_transition(tr("a", T0, "on", "unreachable"))
    engine.on_transition(tr("b", T0 + 10, "on", "unreachable"))
    again = RulesEngine.restore([r], engine.snapshot())
    (alert,) = again.due(T0 + 60)
    assert alert.plug == "a+1" and again.due(T0 + 3600) == []


def test_acknowledging_one_plug_of_a_group_keeps_reminding_of_the_others() -> None:
    r = rule(name="power-cut", when={"to": "unreachable"}, group_by="rule", group_wait="1m",
             repeat="1h")
    engine = RulesEngine([r])
    for plug in ("a", "b"):
        engine.on_transition(tr(plug, T0, "on", "unreachable"))
    engine.due(T0 + 60)
    engine.acknowledge(Ack(1, T0 + 120, plug="a"))
    (reminder,) = engine.due(T0 + 3660)
    assert reminder.plug == "b"


def test_run_summaries_still_reach_grouped_templates() -> None:
    r = rule(name="done", when={"from": "on", "to": "standby"}, group_by="rule",
             body="{{ run.energy_wh | energy }}")
    engine = RulesEngine([r])
    engine.on_transition(tr("w", T0, "on", "standby"), RunSummary("w", T0 - 600, T0, 550, 2000))
    (alert,) = engine.due(T0 + 30)
    assert alert.body == "0.55 kWh"
