"""Turning episodes into outbox rows (PURE): texts per target, groups, quiet hours, suppression.

    episode_alerts(rule, ep, now, tz)             # one Alert per target
    group_alerts(rule, group, members, now, tz)   # one message listing every member
    suppressed_alerts(rule, ep, now, tz, "silenced", until)   # recorded, never sent
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from plugwatch.rules.alert import Alert, dedupe_key
from plugwatch.rules.episodes import Episode, Group
from plugwatch.rules.model import Rule
from plugwatch.rules.quiet import quiet_until
from plugwatch.rules.templates import context, render_title_body


def member_context(rule: Rule, ep: Episode, now: float, tz: tzinfo) -> dict[str, Any]:
    """What a template sees for one episode firing at `now`."""
    ctx = context(rule.name, ep.trigger, ep.run, ep.from_s, now, ep.n, tz)
    ctx.update(ep.facts or {})
    ctx.update(alerts=[ctx], plugs=[ep.plug], count=1)
    return ctx


def _timing(rule: Rule, now: float, tz: tzinfo) -> tuple[float, str]:
    """(due_at, status) under the rule's quiet hours."""
    if rule.quiet_hours is not None:
        until = quiet_until(rule.quiet_hours, now, tz)
        if until is not None:
            return (now, "dropped") if rule.quiet_hours.action == "drop" else (until, "pending")
    return now, "pending"


def episode_alerts(rule: Rule, ep: Episode, now: float, tz: tzinfo) -> list[Alert]:
    """One alert per target of `rule` for episode `ep` firing at `now`."""
    ctx = member_context(rule, ep, now, tz)
    due_at, status = _timing(rule, now, tz)
    alerts = []
    for target in rule.targets:
        title, body = render_title_body(*rule.texts(target), ctx)
        alerts.append(Alert(dedupe_key(rule.name, ep.plug, target, ep.trigger.ts, ep.n),
                            rule.name, ep.plug, target, title, body, now, due_at, status))
    return alerts


def suppressed_alerts(
    rule: Rule, ep: Episode, now: float, tz: tzinfo, status: str, until: float | None,
) -> list[Alert]:
    """Rows recording that `ep`'s alert was not sent (`status`: silenced or inhibited)."""
    return [Alert(f"{a.dedupe_key}|{status}", a.rule, a.plug, a.target, a.title, a.body, now,
                  until if until is not None else now, status)
            for a in episode_alerts(rule, ep, now, tz)]


def group_label(members: list[Episode]) -> str:
    """The `plug` column of a grouped alert: "freezer" or "freezer+11" (first + how many)."""
    first = members[0].plug
    return first if len(members) == 1 else f"{first}+{len(members) - 1}"[:64]


def group_alerts(
    rule: Rule, group: Group, members: list[Episode], now: float, tz: tzinfo,
) -> list[Alert]:
    """One message per target for the `members` of `group` (the rule's own text for one),
    the members in name order."""
    members = sorted(members, key=lambda ep: ep.plug)
    items = []
    for ep in members:
        ctx = member_context(rule, ep, now, tz)
        ctx["title"], ctx["body"] = render_title_body(rule.title, rule.body, ctx)
        items.append(ctx)
    top = dict(items[0])
    top.update(alerts=items, plugs=[ep.plug for ep in members], count=len(members),
               repeat=group.seq)
    due_at, status = _timing(rule, now, tz)
    alerts = []
    for target in rule.targets:
        texts = rule.texts(target) if len(members) == 1 else (rule.group_title, rule.group_body)
        title, body = render_title_body(*texts, top)
        key = dedupe_key(rule.name, f"group:{group.key}", target, group.opened_at, group.seq)
        alerts.append(Alert(key, rule.name, group_label(members), target, title,
                            body.strip(), now, due_at, status, tuple(ep.plug for ep in members)))
    return alerts
