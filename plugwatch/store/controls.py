"""Acknowledgements and silences in the database, and the run figures condition rules start from.

The CLI (`plugwatch ack`, `plugwatch silence`), the HTTP endpoint and MQTT add rows; the running
service reads acknowledgements newer than the last it applied, and the silences in force, every
tick (plugwatch.service.alerting). Functions take a Connection; Store wraps each in a transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, update

from plugwatch.model import RunSummary
from plugwatch.rules.controls import Ack, Silence
from plugwatch.store.tables import AckRow, Plug, RunRow, SilenceRow


def add_ack(conn: Connection, ts: float, rule: str | None, plug: str | None, source: str,
            note: str | None = None) -> int:
    """Store one acknowledgement; its id."""
    result = conn.execute(insert(AckRow).values(ts=ts, rule=rule, plug=plug, source=source,
                                                note=note).returning(AckRow.id))
    return int(result.scalar_one())


def acks_after(conn: Connection, after_id: int) -> list[Ack]:
    """Acknowledgements with an id above `after_id`, oldest first."""
    rows = conn.execute(select(AckRow.id, AckRow.ts, AckRow.rule, AckRow.plug, AckRow.source)
                        .where(AckRow.id > after_id).order_by(AckRow.id))
    return [Ack(id_, ts, rule, plug, source) for id_, ts, rule, plug, source in rows]


def add_silence(conn: Connection, kind: str, value: str, starts: float, ends: float,
                created: float, comment: str | None = None) -> int:
    """Store one silence; its id."""
    result = conn.execute(insert(SilenceRow).values(
        kind=kind, value=value, starts_at=starts, ends_at=ends, created_at=created,
        comment=comment).returning(SilenceRow.id))
    return int(result.scalar_one())


def silences(conn: Connection, ending_after: float | None) -> list[Silence]:
    """Silences that end after `ending_after` (all when None), by id."""
    s = SilenceRow
    stmt = select(s.id, s.kind, s.value, s.starts_at, s.ends_at, s.comment)
    if ending_after is not None:
        stmt = stmt.where(s.ends_at > ending_after)
    return [Silence(id_, kind, value, starts, ends, comment or "")
            for id_, kind, value, starts, ends, comment in conn.execute(stmt.order_by(s.id))]


def expire_silence(conn: Connection, silence_id: int, now: float) -> bool:
    """End silence `silence_id` now; False when there is none in force by that id."""
    result = conn.execute(update(SilenceRow).where(SilenceRow.id == silence_id)
                          .where(SilenceRow.ends_at > now).values(ends_at=now))
    return bool(result.rowcount)


def last_run_ends(conn: Connection) -> dict[str, float]:
    """plug name -> when its last recorded run ended."""
    stmt = (select(Plug.name, func.max(RunRow.end)).join(Plug, Plug.id == RunRow.plug_id)
            .group_by(Plug.name))
    return {name: float(end) for name, end in conn.execute(stmt)}


def recent_runs(conn: Connection, plug: str, count: int) -> list[RunSummary]:
    """The last `count` runs of `plug`, oldest first."""
    r = RunRow
    stmt = (select(Plug.name, r.start, r.end, r.energy_wh, r.peak_w, r.cost, r.currency)
            .join(Plug, Plug.id == r.plug_id).where(Plug.name == plug)
            .order_by(r.end.desc()).limit(count))
    return [RunSummary(*row) for row in reversed(conn.execute(stmt).all())]
