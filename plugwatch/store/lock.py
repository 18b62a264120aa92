"""One `plugwatch run` per database: a second one exits with one line naming the first.

    lock = lock_instance(store)      # StoreError "... is in use by plugwatch run pid 4711 ..."
    ...                              # run; `run --workers K` children run under the parent's lock
    lock.release()

Instances that share the plugs by leases (`cluster:`) take the lock shared: any number of them
may run together, but never beside a standalone instance, which takes it exclusively.

SQLite: an exclusive flock(2) on `<database file>.lock`, which holds the owner's pid, host and
start time (SQLite's own locks are fcntl locks on the database file, so the two never meet).
PostgreSQL: a session advisory lock keyed by database AND schema (tests and installs share a
database in separate schemas), held on a connection of its own whose application_name names the
owner. If the server restarts, that connection dies and the lock with it: a watch thread takes
it again once the server is back (and says so if another instance was quicker).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from plugwatch.errors import StoreError

log = logging.getLogger(__name__)

LOCK_CLASS = 0x706C7777  # "plww": plugwatch's advisory lock space (two-key form)
WAIT_S = 3.0  # a just-killed owner's lock may take a moment to go: try this long
WATCH_S = 15.0
_KEY = "hashtext(current_database() || '/' || current_schema())"
_HOLDER = text(f"""
    SELECT a.application_name, host(a.client_addr), a.backend_start, count(*) OVER ()
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :cls
      AND l.objid::bigint = ({_KEY}::bigint + 4294967296) % 4294967296
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY a.backend_start LIMIT 1""")


def owner_text() -> str:
    """Who this process is: 'plugwatch run pid 4711 on host nas'."""
    return f"plugwatch run pid {os.getpid()} on host {socket.gethostname()}"


class InstanceLock:
    """A held instance lock; `release()` gives it up (also at process exit)."""

    def release(self) -> None:
        """Give the lock up."""


class _FileLock(InstanceLock):
    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class _AdvisoryLock(InstanceLock):
    def __init__(self, engine: Any, conn: Any, where: str, shared: bool) -> None:
        self.engine = engine
        self.conn = conn
        self.where = where
        self.shared = shared
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="plugwatch-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.conn.close()
        self.engine.dispose()

    def _watch(self) -> None:
        lost = False
        while not self._stop.wait(WATCH_S):
            try:
                self.conn.execute(text("SELECT 1"))
                continue
            except Exception:
                with contextlib.suppress(Exception):
                    self.conn.close()
            try:
                self.conn = _connect(self.engine)
                if _try_lock(self.conn, self.shared):
                    if lost:
                        log.warning("holding the instance lock on %s again", self.where)
                    lost = False
                    continue
                holder = _holder(self.conn)
                self.conn.close()
                if not lost:
                    log.error("another instance took the lock on %s while the server was away "
                              "(%s): stop one of them", self.where, holder)
            except Exception:  # the server is still away: try again later
                pass
            lost = True


def lock_instance(store: Any, wait_s: float = WAIT_S, *, shared: bool = False) -> InstanceLock:
    """Take the instance lock of `store`'s database (`shared` for a clustered instance);
    StoreError naming the owner if it is held in a way that excludes us."""
    url = store.engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return InstanceLock()
        return _lock_file(f"{database}.lock", store.where, wait_s, shared)
    if backend == "postgresql":
        return _lock_advisory(url, store.where, wait_s, shared)
    return InstanceLock()


def _lock_file(path: str, where: str, wait_s: float, shared: bool) -> InstanceLock:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror}") from None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise StoreError(_in_use(where, holder)) from None
            time.sleep(0.1)
    if not shared:  # shared holders leave the text alone (there may be several)
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{owner_text()}, since {started}\n".encode(), 0)
    return _FileLock(fd)


def _lock_advisory(url: Any, where: str, wait_s: float, shared: bool) -> InstanceLock:
    engine = create_engine(make_url(url), poolclass=NullPool)
    deadline = time.monotonic() + wait_s
    try:
        conn = _connect(engine)
        while not _try_lock(conn, shared):
            if time.monotonic() >= deadline:
                holder = _holder(conn)
                conn.close()
                raise StoreError(_in_use(where, holder))
            time.sleep(0.2)
    except StoreError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        raise StoreError(f"cannot take the instance lock on {where}: {exc}") from None
    return _AdvisoryLock(engine, conn, where, shared)


def _connect(engine: Any) -> Any:
    conn = engine.connect()
    conn.execute(text("SELECT set_config('application_name', :name, false)"),
                 {"name": owner_text()[:63]})
    conn.commit()
    return conn


def _try_lock(conn: Any, shared: bool) -> bool:
    how = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    got = conn.execute(text(f"SELECT {how}(:cls, {_KEY})"),
                       {"cls": _as_int4(LOCK_CLASS)}).scalar()
    conn.commit()
    return bool(got)


def _holder(conn: Any) -> str:
    row = conn.execute(_HOLDER, {"cls": LOCK_CLASS}).first()
    conn.commit()
    if row is None:
        return "an instance that just stopped?"
    name, addr, since, holders = row
    started = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if since else "?"
    others = f" and {holders - 1} more sharing it by leases" if holders > 1 else ""
    return f"{name or 'an unnamed client'} from {addr or 'a local socket'}, since {started}{others}"


def _as_int4(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _in_use(where: str, holder: str) -> str:
    return (f"{where} is in use by {holder}: stop that instance first, or give this one a "
            "database (or PostgreSQL schema) of its own")
