"""`plugwatch history --alerts`: outbox rows as lines for people or as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, tzinfo
from typing import Any

from plugwatch.formatting import clock, iso


def _opt_iso(ts: float | None) -> str | None:
    return iso(ts) if ts is not None else None


def alert_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One outbox row as a JSON-able dict (times in ISO 8601 UTC; the body included)."""
    return {
        "type": "alert", "ts": iso(row["created_at"]), "rule": row["rule"], "plug": row["plug"],
        "target": row["target"], "status": row["status"], "attempts": row["attempts"],
        "due": iso(row["due_at"]), "sent_at": _opt_iso(row.get("sent_at")),
        "last_error": row.get("last_error"), "title": row["title"], "body": row["body"],
    }


def alert_history_line(row: Mapping[str, Any], tz: tzinfo = UTC) -> str:
    """One line: when, rule, plug -> target, delivery status, title (and the last error)."""
    attempts = row["attempts"]
    status = row["status"]
    if status == "sent":
        status = f"sent {clock(row['sent_at'], tz)}" if row.get("sent_at") else "sent"
    elif status == "pending" and attempts:
        status = f"pending, retry {clock(row['due_at'], tz)}"
    elif status == "pending" and row["due_at"] > row["created_at"]:
        status = f"deferred to {clock(row['due_at'], tz)}"
    elif status == "silenced":
        status = f"silenced until {clock(row['due_at'], tz)}: not sent"
    elif status == "inhibited":
        status = "inhibited by another active alert: not sent"
    tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    error = f" [{row['last_error']}]" if row.get("last_error") and row["status"] != "sent" else ""
    return (f"{clock(row['created_at'], tz)}  {row['plug']:<16} {row['rule']} -> {row['target']}: "
            f"{row['title']} ({status}{tries}){error}")


def alert_history_lines(
    rows: Iterable[Mapping[str, Any]], plug: str | None = None, as_json: bool = False,
    tz: tzinfo = UTC,
) -> list[str]:
    """Lines for `history --alerts` (only `plug`'s alerts when given; times in `tz`)."""
    chosen = [r for r in rows if plug is None or r["plug"] == plug]
    if as_json:
        return [json.dumps(alert_record(r)) for r in chosen]
    return [alert_history_line(r, tz) for r in chosen]
