"""Store: the one object the rest of plugwatch uses to reach the database.

Every method runs in its own transaction and is the single boundary where SQLAlchemy and driver
errors become a one-line StoreError (with any password in the URL redacted). Methods are
synchronous: the service calls them from its writer thread or via asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from plugwatch.errors import StoreError, StoreRejected
from plugwatch.model import Reading, RunSummary, Transition
from plugwatch.redact import redact, redact_text
from plugwatch.rules.controls import Ack, Silence
from plugwatch.store import controls, queries, tables, writes
from plugwatch.store.engine import (
    current_revision,
    head_revision,
    known_revisions,
    make_engine,
    upgrade,
)

log = logging.getLogger(__name__)
UPGRADE_ATTEMPTS = 5  # two processes opening a brand-new database race to create its tables


def open_store(url: str) -> Store:
    """Connect to `url`, bring its schema up to date (Alembic) and return a Store."""
    engine = make_engine(url)
    store = Store(engine, url)
    with store._guard("upgrading the schema of"):
        revision = current_revision(engine)
        if revision == head_revision():
            return store  # the usual case: no Alembic at all
        if revision is not None and revision not in known_revisions():
            engine.dispose()
            raise StoreError(
                f"the schema of {redact(url)} is at revision {revision}, which this plugwatch "
                f"does not know (newest known: {head_revision()}): the database was upgraded by "
                "a newer plugwatch; upgrade plugwatch to use it"
            )
        try:
            for attempt in range(UPGRADE_ATTEMPTS):
                try:
                    upgrade(engine)
                    break
                except OperationalError:  # e.g. `run` is creating the same new schema right now
                    if attempt == UPGRADE_ATTEMPTS - 1:
                        raise
                    time.sleep(0.3)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # alembic.util.CommandError and the like
            engine.dispose()
            raise StoreError(
                f"cannot upgrade the schema of {redact(url)}: {redact_text(str(exc))}"
            ) from exc
    return store


class Store:
    """Typed access to plugwatch's tables; see open_store."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.where = redact(url)
        self._ids: dict[str, int] = {}
        self._ids_lock = threading.Lock()
        # clustered: (connection, plug names) -> the names this instance may still write
        self.fencer: Callable[[Connection, set[str]], set[str]] | None = None

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Convert database errors raised in the block to one-line StoreErrors."""
        try:
            yield
        except DBAPIError as exc:
            lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
            # a constraint or a value the database cannot hold: retrying cannot help
            refused = isinstance(exc, IntegrityError | DataError)
            kind = StoreRejected if refused else StoreError
            raise kind(f"{doing} {self.where} failed: {redact_text(lines[0])}") from exc
        except SQLAlchemyError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"{doing} {self.where} failed: {redact_text(first)}") from exc

    @contextlib.contextmanager
    def _tx(self, doing: str) -> Iterator[Connection]:
        with self._guard(doing), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self, doing: str) -> Iterator[Connection]:
        with self._guard(doing), self.engine.connect() as conn:
            yield conn

    # -- writes -----------------------------------------------------------------------------

    def ensure_plugs(self, plugs: Iterable[Any]) -> dict[str, int]:
        """Create or update a row per PlugConfig; returns name -> id of every known plug."""
        with self._tx("registering plugs in") as conn:
            ids = writes.ensure_plugs(conn, plugs)
        with self._ids_lock:
            self._ids = ids
        return dict(ids)

    def write_batch(self, batch: writes.Batch) -> None:
        """Write everything in `batch` in ONE transaction; already stored items are skipped.
        With a `fencer` (a clustered instance), only the plugs it still holds are written."""
        names = batch.plugs
        with self._tx("writing to") as conn:
            if self.fencer is not None:
                names = writes.fenced_plugs(batch)
                held = self.fencer(conn, names)
                if held != names:
                    log.warning("dropped the writes of %d plugs whose leases moved on: %s",
                                len(names - held), ", ".join(sorted(names - held)[:5]))
                    batch, names = writes.only(batch, held), held
            ids = self._ids
            if not names <= ids.keys():
                ids = writes.plug_ids(conn, names - ids.keys())
            writes.write_batch(conn, ids, batch)
        if ids is not self._ids:
            with self._ids_lock:
                self._ids = ids

    def set_aside(self, rows: list[dict[str, Any]]) -> None:
        """Keep records the database refused in dead_letters (ts, kind, plug, record, error)."""
        with self._tx("setting refused records aside in") as conn:
            writes.set_aside(conn, rows)

    def record_attempt(
        self, alert_id: int, ok: bool, error: str | None, now: float, next_due: float | None,
    ) -> None:
        """Log one delivery attempt. ok -> sent; failed with `next_due` -> pending again at
        next_due; failed without -> failed for good. The error text is redacted."""
        error = None if error is None else redact_text(error)[:2000]
        values: dict[str, Any] = {
            "attempts": tables.alerts.c.attempts + 1, "last_attempt_at": now, "last_error": error,
        }
        if ok:
            values.update(status="sent", sent_at=now, last_error=None)
        elif next_due is not None:
            values.update(status="pending", due_at=next_due)
        else:
            values.update(status="failed")
        with self._tx("recording an alert attempt in") as conn:
            conn.execute(insert(tables.alert_attempts), {"alert_id": alert_id, "ts": now, "ok": ok,
                                                   "error": error})
            conn.execute(update(tables.alerts).where(tables.alerts.c.id == alert_id)
                         .values(**values))

    def purge_readings(self, before_ts: float) -> int:
        """Delete readings older than `before_ts`; returns how many were deleted."""
        with self._tx("purging old readings from") as conn:
            result = conn.execute(delete(tables.readings).where(tables.readings.c.ts < before_ts))
        return int(result.rowcount or 0)

    def delete_kv(self, keys: Iterable[str]) -> None:
        """Delete these kv_state rows (absent ones are no error)."""
        keys = list(keys)
        if keys:
            with self._tx("deleting kv state from") as conn:
                conn.execute(delete(tables.kv_state).where(tables.kv_state.c.key.in_(keys)))

    # -- reads ------------------------------------------------------------------------------

    def plug_names(self) -> list[str]:
        """The names of every plug the database knows, sorted."""
        with self._read("listing plugs") as conn:
            return sorted(writes.plug_ids(conn))

    def status(self) -> list[dict[str, Any]]:
        """Per plug: plug, state, since, last_power_w, last_contact, last_failure (the reason its
        latest failing spell began, or None) and last_failure_at (times as epoch floats)."""
        with self._read("reading status from") as conn:
            return queries.status(conn)

    def transitions(
        self, plug: str | None = None, since: float | None = None, until: float | None = None,
    ) -> list[Transition]:
        """Recorded transitions (of one plug, or all), oldest first."""
        with self._read("reading transitions from") as conn:
            return queries.transitions(conn, plug, since, until)

    def runs(self, plug: str | None = None, since: float | None = None) -> list[RunSummary]:
        """Recorded runs that ended at or after `since`, oldest first."""
        with self._read("reading runs from") as conn:
            return queries.runs(conn, plug, since)

    def readings(
        self, plug: str, since: float | None = None, until: float | None = None,
    ) -> list[Reading]:
        """Stored readings of `plug` with since <= ts <= until, oldest first."""
        with self._read("reading readings from") as conn:
            return queries.readings(conn, plug, since, until)

    def reading_arrays(
        self, plug: str, since: float | None = None, until: float | None = None,
    ) -> tuple[queries.FloatArray, queries.FloatArray]:
        """(ts, power_w) numpy float64 arrays of `plug`, oldest first (for calibrate/plot)."""
        with self._read("reading readings from") as conn:
            return queries.reading_arrays(conn, plug, since, until)

    def load_snapshots(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """plug name -> (ts, detector snapshot)."""
        with self._read("reading snapshots from") as conn:
            return queries.load_snapshots(conn)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Records the writer set aside (ts, kind, plug, record, error), oldest first."""
        with self._read("reading dead letters from") as conn:
            return queries.dead_letters(conn)

    def alerts(self, since: float | None = None) -> list[dict[str, Any]]:
        """Outbox rows created at or after `since`, oldest first."""
        with self._read("reading alerts from") as conn:
            return queries.alerts(conn, since)

    def alert_counts(self) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
        """({status: alerts}, [(rule, target, alerts sent)]) for /metrics."""
        with self._read("counting alerts in") as conn:
            return queries.alert_counts(conn)

    def pending_alerts(self, now: float, limit: int = 100) -> list[dict[str, Any]]:
        """Pending alerts due by `now`, most overdue first."""
        with self._read("reading the alert outbox from") as conn:
            return queries.pending_alerts(conn, now, limit)

    def load_kv(self, prefix: str = "", keys: Iterable[str] | None = None) -> dict[str, Any]:
        """Stored kv_state values whose key starts with `prefix` (and is one of `keys`)."""
        with self._read("reading kv state from") as conn:
            return queries.load_kv(conn, prefix, keys)

    # -- acknowledgements, silences (plugwatch.store.controls) --------------------------------

    def add_ack(self, ts: float, rule: str | None, plug: str | None, source: str,
                note: str | None = None) -> int:
        """Store an acknowledgement (the running service applies it within a tick); its id."""
        with self._tx("storing an acknowledgement in") as conn:
            return controls.add_ack(conn, ts, rule, plug, source, note)

    def acks_after(self, after_id: int) -> list[Ack]:
        """Acknowledgements newer than `after_id`, oldest first."""
        with self._read("reading acknowledgements from") as conn:
            return controls.acks_after(conn, after_id)

    def add_silence(self, kind: str, value: str, starts: float, ends: float, created: float,
                    comment: str | None = None) -> int:
        """Store a silence; its id."""
        with self._tx("storing a silence in") as conn:
            return controls.add_silence(conn, kind, value, starts, ends, created, comment)

    def silences(self, ending_after: float | None = None) -> list[Silence]:
        """Silences ending after `ending_after` (every one when None)."""
        with self._read("reading silences from") as conn:
            return controls.silences(conn, ending_after)

    def expire_silence(self, silence_id: int, now: float) -> bool:
        """End a silence now; False when none by that id is in force."""
        with self._tx("expiring a silence in") as conn:
            return controls.expire_silence(conn, silence_id, now)

    def last_run_ends(self) -> dict[str, float]:
        """plug -> end of its last recorded run."""
        with self._read("reading runs from") as conn:
            return controls.last_run_ends(conn)

    def recent_runs(self, plug: str, count: int) -> list[RunSummary]:
        """The last `count` runs of `plug`, oldest first."""
        with self._read("reading runs from") as conn:
            return controls.recent_runs(conn, plug, count)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
