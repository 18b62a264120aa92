"""What people tell the rules engine: acknowledgements and silences (plain values, PURE).

    Ack(id=7, ts=now, rule=None, plug="washer", source="cli")   # every alert of the washer
    Silence(id=3, kind="plug", value="washer", starts=now, ends=now + 7200)

Both are stored by the service's database (tables `acks` and `silences`) and handed to the
engine as data: the engine reads no clock and no table.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

SILENCE_KINDS = ("plug", "rule", "tag")


@dataclass(frozen=True, slots=True)
class Ack:
    """Someone acknowledged the alerts of a rule, of a plug, or of one rule on one plug."""

    id: int
    ts: float
    rule: str | None = None  # None: any rule
    plug: str | None = None  # None: any plug
    source: str = "cli"  # cli, mqtt, http, state (the appliance's own next state)

    def matches(self, rule: str, plug: str) -> bool:
        """True when this acknowledgement covers `rule`'s alert for `plug`."""
        return (self.rule is None or self.rule == rule) and (self.plug is None or self.plug == plug)


@dataclass(frozen=True, slots=True)
class Silence:
    """No notifications for a plug, a rule or a tag between `starts` and `ends` (epoch s)."""

    id: int
    kind: str  # one of SILENCE_KINDS
    value: str  # a name (plugs and rules may use globs: "freezer-*")
    starts: float
    ends: float
    comment: str = ""

    def covers(self, rule: str, plug: str, tags: Iterable[str], now: float) -> bool:
        """True when this silence is in force at `now` for `rule`'s alert of `plug`."""
        if not self.starts <= now < self.ends:
            return False
        if self.kind == "plug":
            return fnmatch.fnmatchcase(plug, self.value)
        if self.kind == "rule":
            return fnmatch.fnmatchcase(rule, self.value)
        return self.value in tags

    @property
    def label(self) -> str:
        """"plug washer", "rule washer-done", "tag laundry"."""
        return f"{self.kind} {self.value}"


def silenced_until(
    silences: Iterable[Silence], rule: str, plug: str, tags: Iterable[str], now: float,
) -> float | None:
    """When the silences covering `rule`/`plug` at `now` end (the latest), None when none do."""
    tag_set = frozenset(tags)
    ends = [s.ends for s in silences if s.covers(rule, plug, tag_set, now)]
    return max(ends) if ends else None
