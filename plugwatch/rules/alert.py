"""An Alert: one message for one target, ready for the outbox table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification to send. `dedupe_key` makes re-processing the same trigger a no-op."""

    dedupe_key: str
    rule: str
    plug: str
    target: str
    title: str
    body: str
    created_at: float
    due_at: float  # later than created_at when deferred by quiet hours
    status: str = "pending"  # "pending", or "dropped" (quiet hours with action: drop)
    plugs: tuple[str, ...] = ()  # a group's message: the plugs it speaks for (`plug` is a label)

    def as_row(self) -> dict[str, Any]:
        """The alert as an outbox row dict (the store's `alerts` table columns)."""
        return asdict(self)


def dedupe_key(rule: str, plug: str, target: str, trigger_ts: float, repeat: int) -> str:
    """The deterministic identity of an alert: same trigger and repeat number, same key."""
    return f"{rule}|{plug}|{target}|{trigger_ts:.3f}|{repeat}"
