"""Which alerts rules would have fired over recorded events (`plugwatch replay --rules`). PURE.

Time is the events' own: each transition is taken as decided when its state began, and `for:` and
`repeat:` timers fire at their exact times between events, up to `until` (default: the last event).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from plugwatch.formatting import clock, iso
from plugwatch.model import Event, Transition
from plugwatch.rules.alert import Alert
from plugwatch.rules.engine import RulesEngine
from plugwatch.rules.model import Rule


def _when(event: Event) -> float:
    return event.ts if isinstance(event, Transition) else event.end


@dataclass(frozen=True, slots=True)
class StateAck:
    """An alert acknowledged by its plug's own next state (`ack_when:`) during a replay."""

    ts: float
    rule: str
    plug: str
    state: str


def replay_timeline(
    rules: Sequence[Rule], events: Sequence[Event],
    plug_tags: Mapping[str, Iterable[str]] | None = None, tz: str = "UTC",
    until: float | None = None,
) -> list[Alert | StateAck]:
    """Every alert `rules` would have produced for `events` (nothing is sent), and where an
    `ack_when:` state stopped an alert's reminders, in time order."""
    engine = RulesEngine(rules, plug_tags, tz)
    ordered = sorted(events, key=lambda e: (_when(e), isinstance(e, Transition)))
    items: list[Alert | StateAck] = []
    acked: set[tuple[str, str, float]] = set()
    i = 0
    while i < len(ordered):
        now = _when(ordered[i])
        group = []
        while i < len(ordered) and _when(ordered[i]) == now:
            group.append(ordered[i])
            i += 1
        items.extend(_fire_timers(engine, now))
        items.extend(engine.on_events(group, now))
        for row in engine.active():
            key = (row["rule"], row["plug"], row["acked_at"])
            if row["acked_at"] is not None and key not in acked:
                acked.add(key)
                state = next((e.to_state.value for e in group
                              if isinstance(e, Transition) and e.plug == row["plug"]), "?")
                items.append(StateAck(row["acked_at"], row["rule"], row["plug"], state))
    end = until if until is not None else (_when(ordered[-1]) if ordered else 0.0)
    items.extend(_fire_timers(engine, end))
    return items


def replay_alerts(
    rules: Sequence[Rule], events: Sequence[Event],
    plug_tags: Mapping[str, Iterable[str]] | None = None, tz: str = "UTC",
    until: float | None = None,
) -> list[Alert]:
    """Every alert `rules` would have produced for `events` (nothing is sent)."""
    return [a for a in replay_timeline(rules, events, plug_tags, tz, until)
            if isinstance(a, Alert)]


def _fire_timers(engine: RulesEngine, now: float) -> list[Alert]:
    """Fire each pending timer at its own time (not all at `now`), in time order."""
    fired: list[Alert] = []
    while (due := engine.next_due()) is not None and due <= now:
        fired.extend(engine.due(due))
    return fired


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as a JSON line of `replay --rules --json` and `history --alerts --json`."""
    row = alert.as_row()
    return {"type": "alert", "ts": iso(alert.created_at), "due": iso(alert.due_at),
            **{k: row[k] for k in ("rule", "plug", "target", "status", "title", "body")}}


def ack_line(ack: StateAck, tz: tzinfo = UTC) -> str:
    """An acknowledgement by the plug's own state, as text."""
    return (f"{clock(ack.ts, tz)}  ACK {ack.rule}/{ack.plug}: the plug went {ack.state} "
            "(ack_when), no more reminders")


def alert_line(alert: Alert, tz: tzinfo = UTC) -> str:
    """An alert as text: when, rule, target, status and title, then its body indented."""
    deferred = (f" (deferred to {clock(alert.due_at, tz)})"
                if alert.status == "pending" and alert.due_at > alert.created_at else "")
    status = {"dropped": " (dropped: quiet hours)",
              "silenced": f" (silenced until {clock(alert.due_at, tz)}: not sent)",
              "inhibited": " (inhibited: not sent)"}.get(alert.status, "")
    head = (f"{clock(alert.created_at, tz)}  ALERT {alert.rule} -> {alert.target}: "
            f"{alert.title}{deferred}{status}")
    body = [f"    {line}" for line in alert.body.splitlines() if line.strip()]
    return "\n".join([head, *body])


def rules_for_plug(rules: Sequence[Rule], plug: str, tags: Iterable[str] = ()) -> list[Rule]:
    """The rules that apply to `plug` (carrying `tags`)."""
    return [rule for rule in rules if rule.selects(plug, frozenset(tags))]


def selections(rules: Sequence[Rule]) -> str:
    """What the rules select, for a hint: "washer, tv, iron* and plugs tagged critical, pump"."""
    names: list[str] = []
    tags: list[str] = []
    for rule in rules:
        found, picked = (names, rule.plugs) if isinstance(rule.plugs, list) else (
            tags, rule.plugs.tags)
        found += [n for n in picked if n not in found]
    parts = [", ".join(names)] if names else []
    parts += [f"plugs tagged {', '.join(tags)}"] if tags else []
    return " and ".join(parts) or "nothing"


def replay_rules_lines(
    rules_path: str, events: Sequence[Event], plug: str, config: Any | None = None,
    as_json: bool = False, tz_name: str | None = None, until: float | None = None,
) -> tuple[list[str], list[str], int]:
    """(output lines, warnings, how many alerts) of `replay --rules PATH` for the trace of
    `plug` (alerts, and ACK lines where an `ack_when:` state stopped reminders), checked
    against `config` when given; times in `tz_name` (the table's zone; None: UTC); timers
    (`for:`, reminders) fire up to `until` (the trace's last sample; None: the last event).

    Raises RuleFileError (one line per problem) when a rule file is broken.
    """
    import json

    from plugwatch.formatting import zone_named
    from plugwatch.rules.check import load_checked

    tags = {p.name: list(p.tags or []) for p in config.plugs} if config is not None else None
    targets = list(config.targets) if config is not None else None
    rules = [item.rule for item in load_checked(rules_path, tags, targets)]
    zone = tz_name or "UTC"
    warnings = []
    applying = rules_for_plug(rules, plug, (tags or {}).get(plug, ()))
    catch_all = [r.name for r in applying if r.plugs == ["*"]]
    if len(applying) == len(catch_all):  # nothing names this plug: a misnamed trace, likely
        only = f"; only {', '.join(catch_all)} (every plug) does" if catch_all else ""
        picked = selections([r for r in rules if r.plugs != ["*"]])
        warnings.append(f"no rule in {rules_path} is for plug {plug!r}{only} (they select "
                        f"{picked}): give the plug's name with --plug NAME")
    items = replay_timeline(rules, events, tags, zone, until)
    count = sum(isinstance(item, Alert) for item in items)
    if as_json:
        return [json.dumps(alert_json(item) if isinstance(item, Alert) else {
            "type": "ack", "ts": iso(item.ts), "rule": item.rule, "plug": item.plug,
            "state": item.state}) for item in items], warnings, count
    tz = zone_named(zone, "--tz")
    return [alert_line(item, tz) if isinstance(item, Alert) else ack_line(item, tz)
            for item in items], warnings, count
