"""The read side: status, history, the outbox, snapshots and reading history as plain values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from plugwatch.model import Reading, RunSummary, State, Transition
from plugwatch.store import tables
from plugwatch.store.leases import live_holders

if TYPE_CHECKING:  # numpy is imported only by the query that returns arrays (replay, plot)
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]


def status(conn: Connection) -> list[dict[str, Any]]:
    """Per plug: state, since, last power and last contact (snapshot, else last transition);
    `held_by`: the instance whose lease it is, when several instances share the plugs."""
    snaps = {pid: (ts, st) for pid, ts, st in conn.execute(
        select(tables.snapshots.c.plug_id, tables.snapshots.c.ts, tables.snapshots.c.state))}
    holders = live_holders(conn) if conn.dialect.name == "postgresql" else {}
    rows = []
    p = tables.plugs.c
    plugs = select(p.id, p.name, p.last_failure, p.last_failure_at)
    for pid, name, failure, failure_at in conn.execute(plugs.order_by(p.name)).all():
        last = conn.execute(select(tables.readings.c.ts, tables.readings.c.power_w)
                            .where(tables.readings.c.plug_id == pid)
                            .order_by(tables.readings.c.ts.desc()).limit(1)).first()
        snap_ts, snap = snaps.get(pid, (None, {}))
        state, since = snap.get("state"), snap.get("since")
        if state is None:
            change = conn.execute(select(tables.transitions.c.to_state, tables.transitions.c.ts)
                                  .where(tables.transitions.c.plug_id == pid)
                                  .order_by(tables.transitions.c.ts.desc()).limit(1)).first()
            state, since = (change[0], change[1]) if change else (State.UNKNOWN.value, None)
        power = last[1] if last else snap.get("last_power_w")
        contacts = [t for t in (last[0] if last else None, snap.get("last_contact")) if t]
        rows.append({
            "plug": name, "state": str(state), "since": since, "last_power_w": power,
            "last_contact": max(contacts) if contacts else None, "snapshot_ts": snap_ts,
            "held_by": holders.get(f"plug:{name}"),
            "last_failure": failure, "last_failure_at": failure_at,
        })
    return rows


def _by_plug(stmt: Any, column: Any, plug: str | None) -> Any:
    """`stmt` joined to plugs, limited to the plug called `plug` unless None."""
    stmt = stmt.join(tables.plugs, tables.plugs.c.id == column)
    return stmt if plug is None else stmt.where(tables.plugs.c.name == plug)


def transitions(
    conn: Connection, plug: str | None, since: float | None, until: float | None,
) -> list[Transition]:
    """Transitions with since <= ts <= until, oldest first."""
    t = tables.transitions.c
    name = tables.plugs.c.name
    stmt = _by_plug(select(name, t.ts, t.from_state, t.to_state, t.reason, t.power_w),
                    t.plug_id, plug)
    if since is not None:
        stmt = stmt.where(t.ts >= since)
    if until is not None:
        stmt = stmt.where(t.ts <= until)
    return [Transition(name, ts, State(a), State(b), reason, power)
            for name, ts, a, b, reason, power in conn.execute(stmt.order_by(t.ts, t.id))]


def runs(conn: Connection, plug: str | None, since: float | None) -> list[RunSummary]:
    """Runs that ended at or after `since`, oldest end first."""
    r = tables.runs.c
    stmt = _by_plug(select(tables.plugs.c.name, r.start, r.end, r.energy_wh, r.peak_w, r.cost,
                           r.currency, r.unobserved_s), r.plug_id, plug)
    if since is not None:
        stmt = stmt.where(r.end >= since)
    return [RunSummary(name, start, end, wh, peak, cost, currency, unobserved_s=unseen or 0.0)
            for name, start, end, wh, peak, cost, currency, unseen
            in conn.execute(stmt.order_by(r.end, r.id))]


def readings(
    conn: Connection, plug: str, since: float | None, until: float | None,
) -> list[Reading]:
    """Readings of `plug` with since <= ts <= until, oldest first."""
    r = tables.readings.c
    stmt = _by_plug(select(r.ts, r.power_w, r.relay_on, r.energy_kwh), r.plug_id, plug)
    if since is not None:
        stmt = stmt.where(r.ts >= since)
    if until is not None:
        stmt = stmt.where(r.ts <= until)
    return [Reading(ts, power, relay, energy)
            for ts, power, relay, energy in conn.execute(stmt.order_by(r.ts))]


def reading_arrays(
    conn: Connection, plug: str, since: float | None, until: float | None,
) -> tuple[FloatArray, FloatArray]:
    """(ts, power_w) float64 arrays of `plug` for since <= ts <= until, oldest first."""
    r = tables.readings.c
    stmt = _by_plug(select(r.ts, r.power_w), r.plug_id, plug)
    if since is not None:
        stmt = stmt.where(r.ts >= since)
    if until is not None:
        stmt = stmt.where(r.ts <= until)
    import numpy as np

    rows = conn.execute(stmt.order_by(r.ts)).all()
    data = np.array(rows, dtype=np.float64).reshape(-1, 2)
    return data[:, 0].copy(), data[:, 1].copy()


def load_snapshots(conn: Connection) -> dict[str, tuple[float, dict[str, Any]]]:
    """plug name -> (ts, detector snapshot) for every plug that has one."""
    stmt = select(tables.plugs.c.name, tables.snapshots.c.ts, tables.snapshots.c.state).join(
        tables.plugs, tables.plugs.c.id == tables.snapshots.c.plug_id)
    return {name: (ts, state) for name, ts, state in conn.execute(stmt)}


def alerts(conn: Connection, since: float | None) -> list[dict[str, Any]]:
    """Outbox rows created at or after `since`, oldest first."""
    stmt = select(tables.alerts)
    if since is not None:
        stmt = stmt.where(tables.alerts.c.created_at >= since)
    return [dict(row._mapping) for row in conn.execute(stmt.order_by(tables.alerts.c.created_at,
                                                                     tables.alerts.c.id))]


def pending_alerts(conn: Connection, now: float, limit: int) -> list[dict[str, Any]]:
    """Pending alerts due at or before `now`, the most overdue first, at most `limit`."""
    a = tables.alerts.c
    stmt = (select(tables.alerts).where(a.status == "pending").where(a.due_at <= now)
            .order_by(a.due_at, a.id).limit(limit))
    return [dict(row._mapping) for row in conn.execute(stmt)]


def load_kv(conn: Connection, prefix: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """key -> value of every kv_state entry whose key starts with `prefix` (and is in `keys`)."""
    kv = tables.kv_state.c
    stmt = select(kv.key, kv.value)
    if prefix:
        stmt = stmt.where(kv.key.startswith(prefix, autoescape=True))
    if keys is not None:
        stmt = stmt.where(kv.key.in_(list(keys)))
    return {key: value for key, value in conn.execute(stmt)}


def alert_counts(conn: Connection) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
    """({status: alerts}, [(rule, target, alerts sent)]) over the whole outbox, from one
    statement: a scrape never shows an alert both pending and sent (the sender marks it between
    two reads)."""
    a = tables.alerts.c
    by_status: dict[str, int] = {}
    sent = []
    for status, rule, target, n in conn.execute(
            select(a.status, a.rule, a.target, func.count())
            .group_by(a.status, a.rule, a.target).order_by(a.rule, a.target)):
        by_status[status] = by_status.get(status, 0) + int(n)
        if status == "sent":
            sent.append((rule, target, int(n)))
    return by_status, sent


def dead_letters(conn: Connection) -> list[dict[str, Any]]:
    """Set-aside records as dicts (ts, kind, plug, record, error), oldest first."""
    d = tables.dead_letters.c
    stmt = select(d.ts, d.kind, d.plug, d.record, d.error).order_by(d.id)
    return [dict(row._mapping) for row in conn.execute(stmt)]
