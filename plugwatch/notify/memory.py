"""An in-memory outbox with the store's semantics, for `replay --rules`, tests and benches.

The service uses the database outbox (plugwatch.store); this one loses everything on exit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from plugwatch.rules.alert import Alert


@dataclass
class OutboxRow:
    """One alert in the outbox with its delivery status (`due_at` moves on with each retry)."""

    id: int
    alert: Alert
    due_at: float
    status: str
    attempts: int = 0
    last_error: str | None = None
    sent_at: float | None = None
    history: list[tuple[float, bool, str | None]] = field(default_factory=list)

    @property
    def dedupe_key(self) -> str:
        """The alert's identity (its notification tag derives from it)."""
        return self.alert.dedupe_key

    @property
    def target(self) -> str:
        """The notify target's name, as the sender reads it."""
        return self.alert.target

    @property
    def title(self) -> str:
        """The message title."""
        return self.alert.title

    @property
    def body(self) -> str:
        """The message body."""
        return self.alert.body


class MemoryOutbox:
    """Alerts by dedupe key; adding a key twice is a no-op (like the store's unique index)."""

    def __init__(self) -> None:
        self.rows: dict[str, OutboxRow] = {}
        self._lock = threading.Lock()

    def add(self, alerts: list[dict[str, Any]]) -> int:
        """Add alert rows (Alert.as_row() dicts); returns how many were new."""
        added = 0
        with self._lock:
            for alert in alerts:
                if alert["dedupe_key"] not in self.rows:
                    row = Alert(**alert)
                    self.rows[row.dedupe_key] = OutboxRow(
                        len(self.rows) + 1, row, due_at=row.due_at, status=row.status)
                    added += 1
        return added

    def pending_alerts(self, now: float, limit: int) -> list[OutboxRow]:
        """Pending alerts due by `now`, oldest first."""
        with self._lock:
            due = [r for r in self.rows.values() if r.status == "pending" and r.due_at <= now]
        return sorted(due, key=lambda r: (r.due_at, r.id))[:limit]

    def record_attempt(
        self, alert_id: int, ok: bool, error: str | None, now: float, next_due: float | None
    ) -> None:
        """Record one attempt (see plugwatch.notify.sender.Outbox)."""
        with self._lock:
            row = next(r for r in self.rows.values() if r.id == alert_id)
            row.attempts += 1
            row.history.append((now, ok, error))
            if ok:
                row.status, row.sent_at = "sent", now
            elif next_due is None:
                row.status, row.last_error = "failed", error
            else:
                row.due_at, row.last_error = next_due, error
