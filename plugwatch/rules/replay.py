"""Which alerts rules would have fired over recorded events (`plugwatch replay --rules`). PURE.

Time is the events' own: each transition is taken as decided when its state began, and `for:` and
`repeat:` timers fire at their exact times between events, up to `until` (default: the last event).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from plugwatch.formatting import iso
from plugwatch.model import Event, Transition
from plugwatch.rules.alert import Alert
from plugwatch.rules.engine import RulesEngine
from plugwatch.rules.model import Rule


def _when(event: Event) -> float:
    return event.ts if isinstance(event, Transition) else event.end


def replay_alerts(
    rules: Sequence[Rule], events: Sequence[Event],
    plug_tags: Mapping[str, Iterable[str]] | None = None, tz: str = "UTC",
    until: float | None = None,
) -> list[Alert]:
    """Every alert `rules` would have produced for `events` (nothing is sent)."""
    engine = RulesEngine(rules, plug_tags, tz)
    ordered = sorted(events, key=lambda e: (_when(e), isinstance(e, Transition)))
    alerts: list[Alert] = []
    i = 0
    while i < len(ordered):
        now = _when(ordered[i])
        group = []
        while i < len(ordered) and _when(ordered[i]) == now:
            group.append(ordered[i])
            i += 1
        alerts.extend(_fire_timers(engine, now))
        alerts.extend(engine.on_events(group, now))
    end = until if until is not None else (_when(ordered[-1]) if ordered else 0.0)
    alerts.extend(_fire_timers(engine, end))
    return alerts


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


def alert_line(alert: Alert) -> str:
    """An alert as one line of text."""
    deferred = f" (deferred to {iso(alert.due_at)})" if alert.due_at > alert.created_at else ""
    dropped = " (dropped: quiet hours)" if alert.status == "dropped" else ""
    return (f"{iso(alert.created_at)}  ALERT {alert.rule} -> {alert.target}: "
            f"{alert.title}{deferred}{dropped}")


def replay_rules_lines(
    rules_path: str, events: Sequence[Event], config: Any | None = None, as_json: bool = False,
) -> list[str]:
    """Output lines of `replay --rules PATH` (checked against `config` when given).

    Raises RuleFileError (one line per problem) when a rule file is broken.
    """
    import json

    from plugwatch.formatting import machine_zone
    from plugwatch.rules.check import load_checked

    tags = {p.name: list(p.tags or []) for p in config.plugs} if config is not None else None
    targets = list(config.targets) if config is not None else None
    rules = [item.rule for item in load_checked(rules_path, tags, targets)]
    zone = config.timezone if config is not None else machine_zone()
    alerts = replay_alerts(rules, events, tags, zone)
    if as_json:
        return [json.dumps(alert_json(a)) for a in alerts]
    return [alert_line(a) for a in alerts]
