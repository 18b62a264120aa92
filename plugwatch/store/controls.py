"""Acknowledgements and silences in the database, and the run figures condition rules start from.

The CLI (`plugwatch ack`, `plugwatch silence`), the HTTP endpoint and MQTT add rows; the running
service reads acknowledgements newer than the last it applied, and the silences in force, every
tick (plugwatch.service.alerting). Functions take a Connection; Store wraps each in a transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, update

from plugwatch.model import RunSummary
from plugwatch.rules.controls import Ack, Silence
from plugwatch.store import tables


def add_ack(conn: Connection, ts: float, rule: str | None, plug: str | None, source: str,
            note: str | None = None) -> int:
    """Store one acknowledgement; its id."""
    result = conn.execute(insert(tables.acks).values(ts=ts, rule=rule, plug=plug, source=source,
                                                note=note).returning(tables.acks.c.id))
    return int(result.scalar_one())


def acks_after(conn: Connection, after_id: int) -> list[Ack]:
    """Acknowledgements with an id above `after_id`, oldest first."""
    a = tables.acks.c
    rows = conn.execute(select(a.id, a.ts, a.rule, a.plug, a.source)
                        .where(a.id > after_id).order_by(a.id))
    return [Ack(id_, ts, rule, plug, source) for id_, ts, rule, plug, source in rows]


def add_silence(conn: Connection, kind: str, value: str, starts: float, ends: float,
                created: float, comment: str | None = None) -> int:
    """Store one silence; its id."""
    result = conn.execute(insert(tables.silences).values(
        kind=kind, value=value, starts_at=starts, ends_at=ends, created_at=created,
        comment=comment).returning(tables.silences.c.id))
    return int(result.scalar_one())


def silences(conn: Connection, ending_after: float | None) -> list[Silence]:
    """Silences that end after `ending_after` (all when None), by id."""
    s = tables.silences.c
    stmt = select(s.id, s.kind, s.value, s.starts_at, s.ends_at, s.comment)
    if ending_after is not None:
        stmt = stmt.where(s.ends_at > ending_after)
    return [Silence(id_, kind, value, starts, ends, comment or "")
            for id_, kind, value, starts, ends, comment in conn.execute(stmt.order_by(s.id))]


def expire_silence(conn: Connection, silence_id: int, now: float) -> bool:
    """End silence `silence_id` now; False when there is none in force by that id."""
    result = conn.execute(update(tables.silences).where(tables.silences.c.id == silence_id)
                          .where(tables.silences.c.ends_at > now).values(ends_at=now))
    return bool(result.rowcount)


def last_run_ends(conn: Connection) -> dict[str, float]:
    """plug name -> when its last recorded run ended."""
    plugs, r = tables.plugs.c, tables.runs.c
    stmt = (select(plugs.name, func.max(r.end)).join(tables.plugs, plugs.id == r.plug_id)
            .group_by(plugs.name))
    return {name: float(end) for name, end in conn.execute(stmt)}


def recent_runs(conn: Connection, plug: str, count: int) -> list[RunSummary]:
    """The last `count` runs of `plug`, oldest first."""
    r = tables.runs.c
    stmt = (select(tables.plugs.c.name, r.start, r.end, r.energy_wh, r.peak_w, r.cost, r.currency)
            .join(tables.plugs, tables.plugs.c.id == r.plug_id).where(tables.plugs.c.name == plug)
            .order_by(r.end.desc()).limit(count))
    return [RunSummary(*row) for row in reversed(conn.execute(stmt).all())]
