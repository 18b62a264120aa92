"""Says why things fail without a line per retry: plugs (FailureLog), and anything that can be
away for a while (Outage: the database for the writer, the outbox, a notification target).

FailureLog: one log line when a plug's failure changes, never one per read.

A line is logged when a plug's reads start failing (with the reason), when the reason changes
to one not seen in this spell (a plug flipping between two reasons logs each once), when the
plug turns unreachable, and when it answers again. Reasons that differ only in their numbers or
parenthesised details (a power value, the first bytes of a garbage answer) count as the same. At
most `per_minute` such lines are logged a minute over all plugs; the rest are counted in one
summary line. The reason a failing spell began is handed to `note(plug, ts, reason)` (the writer
stores it for `plugwatch status`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from plugwatch.model import ReadFailure, Sample, State

log = logging.getLogger("plugwatch.plugs")

_DETAIL = re.compile(r"\([^)]*\)|\S*\d\S*")  # parenthesised details, words with digits
Note = Callable[[str, float, str], None]
OUTAGE_LOG_S = 120.0  # while something stays away, one line this often


@dataclass(slots=True)
class Outage:
    """When to log about one thing that can be away: a line when it goes (`failed()` returns
    "start"), one every `every_s` while it stays away ("again"), one when it is back
    (`recovered()` returns the outage's length); other failed attempts are only counted.

        outage = Outage()
        if (due := outage.failed()) is not None:
            log.error("outbox: %s" if due == "start" else "outbox failing for ...", ...)
        if (lasted := outage.recovered()) is not None:
            log.warning("outbox readable again after %s (%d failed attempts)",
                        format_duration(lasted), outage.attempts)
    """

    every_s: float = OUTAGE_LOG_S
    clock: Callable[[], float] = time.monotonic
    since: float | None = None  # when the current outage began (None: no outage)
    attempts: int = 0  # failed attempts in the current (or, once recovered, the last) outage
    _next_log: float = field(default=0.0, repr=False)

    def failed(self) -> str | None:
        """Count one failed attempt; "start" or "again" when a line is due, else None."""
        now = self.clock()
        self.attempts += 1
        if self.since is None:
            self.since, self.attempts, self._next_log = now, 1, now + self.every_s
            return "start"
        if now >= self._next_log:
            self._next_log = now + self.every_s
            return "again"
        return None

    def lasted(self) -> float:
        """Seconds since the current outage began (0 without one)."""
        return 0.0 if self.since is None else self.clock() - self.since

    def recovered(self) -> float | None:
        """It works again: the outage's length if one was going on (a line is due), else None."""
        if self.since is None:
            return None
        lasted = self.lasted()
        self.since = None
        return lasted


@dataclass(slots=True)
class _Spell:
    """A plug's current run of failed reads."""

    shape: str  # the kind and the reason with its numbers and details blanked
    reason: str  # the reason of the failure that began the spell (or its latest new shape)
    failures: int = 1
    unreachable: bool = False
    seen: set[str] = field(default_factory=set)  # every shape of this spell (logged once each)


class FailureLog:
    """Logs each plug's failures when they change, rate-limited over all plugs."""

    def __init__(self, note: Note | None = None, *, per_minute: int = 30) -> None:
        self.note = note
        self.per_minute = per_minute
        self._spells: dict[str, _Spell] = {}
        self._window_start = float("-inf")
        self._lines = 0
        self._suppressed = 0

    @property
    def failing(self) -> int:
        """How many plugs are failing right now."""
        return len(self._spells)

    def reason(self, plug: str) -> str | None:
        """Why `plug` is failing now (as stored for `status`), None while it answers."""
        spell = self._spells.get(plug)
        return None if spell is None else spell.reason

    def observe(self, plug: str, sample: Sample, state: State) -> None:
        """Account for one live sample of `plug`; `state` is its detector's state after it."""
        spell = self._spells.get(plug)
        if not isinstance(sample, ReadFailure):
            if spell is not None:
                del self._spells[plug]
                self._say(sample.ts, "plug %s answers again after %d failed reads", plug,
                          spell.failures)
            return
        shape = f"{sample.kind} {_DETAIL.sub('#', sample.reason)}"
        if spell is None:
            self._spells[plug] = spell = _Spell(shape, sample.reason, seen={shape})
            self._noted(plug, sample)
            self._say(sample.ts, "plug %s: read failed: %s", plug, sample.reason)
        else:
            spell.failures += 1
            if shape != spell.shape:  # a plug flipping between two reasons: one line each
                spell.shape, spell.reason = shape, sample.reason
                if shape not in spell.seen:
                    spell.seen.add(shape)
                    self._noted(plug, sample)
                    self._say(sample.ts, "plug %s: read failed differently now: %s", plug,
                              sample.reason)
        if state is State.UNREACHABLE and not spell.unreachable:
            spell.unreachable = True
            self._say(sample.ts, "plug %s is unreachable after %d failed reads: %s", plug,
                      spell.failures, sample.reason)

    def _noted(self, plug: str, sample: ReadFailure) -> None:
        if self.note is not None:
            self.note(plug, sample.ts, sample.reason)

    def _say(self, ts: float, message: str, *args: object) -> None:
        if ts - self._window_start >= 60.0:
            if self._suppressed:
                log.warning("%d more plug failure lines in the last minute were not logged "
                            "(%d plugs failing now)", self._suppressed, self.failing)
            self._window_start, self._lines, self._suppressed = ts, 0, 0
        if self._lines < self.per_minute:
            self._lines += 1
            log.warning(message, *args)
        else:
            self._suppressed += 1
