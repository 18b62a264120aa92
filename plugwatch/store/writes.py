"""The write path: one Batch in one transaction, idempotent by the tables' unique keys.

Re-writing a reading, transition, run or alert that is already stored is a no-op (INSERT ... ON
CONFLICT DO NOTHING); snapshots and kv values are upserted (a snapshot never goes back in time).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from plugwatch.errors import StoreRejected
from plugwatch.model import Reading, RunSummary, Transition
from plugwatch.store import tables
from plugwatch.store.bulk import Bulk, unsupported
from plugwatch.store.engine import dumps

PLUG_KV = "@plug:"  # a kv key "<what>@plug:<name>" is that plug's: fenced with its writes
ALERT_COLUMNS = ("dedupe_key", "rule", "plug", "target", "title", "body", "created_at", "due_at")
ALERT_STATUSES = ("pending", "sent", "failed", "dropped", "silenced", "inhibited")
READINGS = Bulk(tables.readings, "ON CONFLICT DO NOTHING")
# a snapshot never goes back in time
SNAPSHOTS = Bulk(tables.snapshots, "ON CONFLICT (plug_id) DO UPDATE SET ts = excluded.ts, "
                 "state = excluded.state WHERE snapshots.ts <= excluded.ts")


@dataclass
class Batch:
    """Everything the service records at once: written in ONE transaction by `write_batch`."""

    readings: list[tuple[str, Reading]] = field(default_factory=list)  # (plug name, reading)
    transitions: list[Transition] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    snapshots: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    alerts: Sequence[Mapping[str, Any]] = field(default_factory=list)  # Alert.as_row() dicts
    kv: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, tuple[float, str]] = field(default_factory=dict)  # plug -> (ts, reason)

    @property
    def plugs(self) -> set[str]:
        """The names of every plug the batch refers to."""
        names = {p for p, _ in self.readings} | set(self.snapshots) | set(self.failures)
        return names | {t.plug for t in self.transitions} | {r.plug for r in self.runs}


def plug_kv_key(what: str, plug: str) -> str:
    """The kv key of `plug`'s own `what` (e.g. its rules state): written only while the
    plug's lease is held, like its readings (see `fenced_plugs`)."""
    return f"{what}{PLUG_KV}{plug}"


def fenced_plugs(batch: Batch) -> set[str]:
    """Every plug whose lease a clustered instance must hold to write `batch`: the plugs of
    its records, of its alerts (each member of a group's message) and of its per-plug kv keys."""
    names = batch.plugs | {p for a in batch.alerts for p in _alert_plugs(a)}
    return names | {key.partition(PLUG_KV)[2] for key in batch.kv if PLUG_KV in key}


def _alert_plugs(alert: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(alert.get("plugs") or ()) or (str(alert["plug"]),)


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's own INSERT (it has ON CONFLICT) into `table`."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise unsupported(conn)


def ensure_plugs(conn: Connection, plugs: Iterable[Any]) -> dict[str, int]:
    """Create or update a row per plug config (name, driver, address, tags); all name -> id."""
    rows = [{
        "name": p.name, "driver": getattr(p, "driver", ""),
        "address": str(getattr(p, "address", getattr(p, "host", ""))),
        "tags": list(getattr(p, "tags", ())),
    } for p in plugs]
    if rows:
        stmt = insert_for(conn, tables.plugs)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"driver": stmt.excluded.driver, "address": stmt.excluded.address,
                  "tags": stmt.excluded.tags},
        ), rows)
    return plug_ids(conn)


def plug_ids(conn: Connection, names: Iterable[str] = ()) -> dict[str, int]:
    """name -> id of every known plug; `names` not yet known are created (driver unknown)."""
    missing = [{"name": n, "driver": "", "address": "", "tags": []} for n in sorted(set(names))]
    if missing:
        conn.execute(insert_for(conn, tables.plugs).on_conflict_do_nothing(), missing)
    return {name: id_ for id_, name in conn.execute(select(tables.plugs.c.id, tables.plugs.c.name))}


def write_batch(conn: Connection, ids: dict[str, int], batch: Batch) -> None:
    """Write `batch` on `conn` (the caller owns the transaction); `ids` must hold every plug."""
    if batch.readings:
        # the hot path (a row per sample), then snapshots (one per plug every few seconds): plain
        # tuples in bulk, see plugwatch.store.bulk
        READINGS.insert(conn, [(ids[plug], r.ts, r.power_w, r.relay_on, r.energy_kwh)
                               for plug, r in batch.readings])
    if batch.transitions:
        conn.execute(insert_for(conn, tables.transitions).on_conflict_do_nothing(), [{
            "plug_id": ids[t.plug], "ts": t.ts, "from_state": str(t.from_state),
            "to_state": str(t.to_state), "reason": t.reason, "power_w": t.power_w,
        } for t in batch.transitions])
    if batch.runs:
        conn.execute(insert_for(conn, tables.runs).on_conflict_do_nothing(), [{
            "plug_id": ids[r.plug], "start": r.start, "end": r.end, "duration_s": r.duration_s,
            "energy_wh": r.energy_wh, "peak_w": r.peak_w, "cost": r.cost, "currency": r.currency,
            "unobserved_s": r.unobserved_s,
        } for r in batch.runs if not r.open])  # an open run is not finished: nothing to store
    if batch.snapshots:
        SNAPSHOTS.insert(conn, [(ids[plug], ts, dumps(state))
                                for plug, (ts, state) in batch.snapshots.items()])
    if batch.alerts:
        conn.execute(insert_for(conn, tables.alerts).on_conflict_do_nothing(),
                     [alert_row(a) for a in batch.alerts])
    if batch.failures:
        conn.execute(update(tables.plugs).where(tables.plugs.c.id == bindparam("pid")).values(
            last_failure=bindparam("reason"), last_failure_at=bindparam("ts")), [
            {"pid": ids[plug], "reason": reason, "ts": ts}
            for plug, (ts, reason) in batch.failures.items()])
    if batch.kv:
        stmt = insert_for(conn, tables.kv_state)
        now = time.time()
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        ), [{"key": k, "value": v, "updated_at": now} for k, v in batch.kv.items()])


def set_aside(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Keep refused records in dead_letters: dicts of ts, kind, plug, record (JSON), error."""
    conn.execute(insert(tables.dead_letters), list(rows))


def alert_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    """An outbox row from an alert dict; StoreRejected naming what is missing or wrong."""
    missing = [c for c in ALERT_COLUMNS if alert.get(c) is None]
    if missing:
        raise StoreRejected(f"alert {alert.get('dedupe_key')!r} lacks {', '.join(missing)}")
    status = alert.get("status") or "pending"
    if status not in ALERT_STATUSES:
        raise StoreRejected(
            f"alert status {status!r} is not one of {', '.join(ALERT_STATUSES)}")
    row = {c: alert[c] for c in ALERT_COLUMNS}
    row.update(status=status, attempts=0)
    return row


def only(batch: Batch, plugs: set[str]) -> Batch:
    """The part of `batch` that concerns `plugs`: a group's alert needs every member, kv rows
    are kept unless they are another plug's (`plug_kv_key`)."""
    return Batch(
        readings=[(p, r) for p, r in batch.readings if p in plugs],
        transitions=[t for t in batch.transitions if t.plug in plugs],
        runs=[r for r in batch.runs if r.plug in plugs],
        snapshots={p: s for p, s in batch.snapshots.items() if p in plugs},
        alerts=[a for a in batch.alerts if plugs.issuperset(_alert_plugs(a))],
        kv={k: v for k, v in batch.kv.items()
            if PLUG_KV not in k or k.partition(PLUG_KV)[2] in plugs},
        failures={p: f for p, f in batch.failures.items() if p in plugs},
    )
