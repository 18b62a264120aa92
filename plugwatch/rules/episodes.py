"""The rules engine's memory (PURE): one Episode per (rule, plug) alert, one Group per message.

An Episode lives from its trigger until it is resolved (the plug left the rule's states, the
condition ended): pending its `for:`, firing with `repeat:` reminders, then quiet but still
*active* (it can inhibit other rules) until resolved. Acknowledging it stops its reminders.
A Group collects the episodes of a rule with `group_by:` into one message per `group_wait`.
Both serialise to JSON for the engine's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plugwatch.model import RunSummary, State, Transition


@dataclass
class Episode:
    """One rule's alert for one plug, from its trigger until it is resolved."""

    rule: str
    plug: str
    trigger: Transition  # what started it (a pseudo-transition for condition rules)
    run: RunSummary | None
    from_s: float | None  # time spent in the `from` state
    fire_at: float | None  # when it next sends (None: nothing scheduled)
    n: int = 0  # repeat number of the next alert (0 = the first alert)
    active_at: float | None = None  # when its time first came: from then on it inhibits
    acked_at: float | None = None  # acknowledged: no more reminders
    held: str | None = None  # the rule whose active alert inhibits this one
    grouped: bool = False  # waiting in its group's next message
    facts: dict[str, Any] | None = None  # a condition's figures for templates (duty, usual)

    @property
    def live(self) -> bool:
        """True while it still has something to send (pending, reminding, held or grouped)."""
        return self.fire_at is not None or self.grouped or self.held is not None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (see from_json)."""
        t, r = self.trigger, self.run
        return {
            "rule": self.rule, "plug": self.plug, "from_s": self.from_s,
            "fire_at": self.fire_at, "n": self.n, "active_at": self.active_at,
            "acked_at": self.acked_at, "held": self.held, "grouped": self.grouped,
            "facts": self.facts,
            "trigger": [t.ts, t.from_state.value, t.to_state.value, t.reason, t.power_w],
            "run": None if r is None else [r.start, r.end, r.energy_wh, r.peak_w, r.cost,
                                           r.currency],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Episode:
        """An episode from to_json's form (version 1 snapshots lack the newer keys)."""
        ts, from_state, to_state, reason, power = d["trigger"]
        t = Transition(d["plug"], ts, State(from_state), State(to_state), reason, power)
        run = None if d["run"] is None else RunSummary(d["plug"], *d["run"])
        return cls(d["rule"], d["plug"], t, run, d["from_s"], d["fire_at"], d["n"],
                   d.get("active_at", ts if d["n"] else None), d.get("acked_at"),
                   d.get("held"), d.get("grouped", False), d.get("facts"))


@dataclass
class Group:
    """The alerts of one rule sharing a `group_by` value, sent as one message at `flush_at`."""

    rule: str
    key: str  # "*" for group_by: rule, a tag for group_by: tag
    opened_at: float  # with `seq`, the identity of each of its messages
    seq: int = 0  # how many messages it has sent
    flush_at: float | None = None
    members: list[str] = field(default_factory=list)  # plugs with an active alert
    pending: list[str] = field(default_factory=list)  # plugs in the next message

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (see from_json)."""
        return {"rule": self.rule, "key": self.key, "opened_at": self.opened_at,
                "seq": self.seq, "flush_at": self.flush_at, "members": list(self.members),
                "pending": list(self.pending)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Group:
        """The inverse of to_json."""
        return cls(d["rule"], d["key"], d["opened_at"], d["seq"], d["flush_at"],
                   list(d["members"]), list(d["pending"]))


def active_in(snapshot: dict[str, Any] | None) -> list[Episode]:
    """The active alerts (their time has come, not resolved) in an engine snapshot."""
    episodes = (snapshot or {}).get("episodes", [])
    return [ep for ep in map(Episode.from_json, episodes) if ep.active_at is not None]
