"""Engines and schema upgrades: SQLite tuned for one writer (WAL), PostgreSQL via psycopg 3.

The Alembic migrations live in the top-level alembic/ folder of the repository and inside the
package of a built wheel (plugwatch.resources finds them either way, never via the cwd). Opening a
database whose schema is already current costs one SELECT: Alembic is imported only to upgrade.
"""

from __future__ import annotations

import json
import logging
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from plugwatch.errors import StoreError
from plugwatch.extras import require
from plugwatch.redact import redact, redact_text
from plugwatch.resources import migrations_dir

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_REVISION = re.compile(r"^(revision|down_revision)\b[^=]*=\s*(?:['\"]([^'\"]+)['\"]|None)", re.M)


def normalize_url(url: str) -> str:
    """postgres:// and postgresql:// use psycopg 3 (the installed driver); others unchanged."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    """An Engine for `url`; SQLite gets WAL, synchronous=NORMAL, a busy timeout, foreign keys."""
    url = normalize_url(url)
    if _driver_name(url) == "psycopg":
        require("psycopg", "postgres", f"database {redact(url)}")
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            _check_sqlite_folder(parsed.database)
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
                                   json_serializer=dumps, json_deserializer=loads)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True, json_serializer=dumps,
                             json_deserializer=loads)
    except StoreError:
        raise
    except Exception as exc:  # bad URL, unknown dialect, missing driver
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(
            f"cannot use database {redact(url)}: {redact_text(reason)} (use sqlite:///FILE or "
            "postgresql+psycopg://user@host/db)"
        ) from exc


def _driver_name(url: str) -> str | None:
    try:
        return make_url(url).get_driver_name()
    except Exception:  # a bad URL: make_engine reports it
        return None


def dumps(value: Any) -> str:
    """JSON for a JSON column; NaN and infinities (PostgreSQL rejects them) as {"__float__": ..}."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_encode(value), allow_nan=False, separators=(",", ":"))


def loads(text: str) -> Any:
    """The inverse of `dumps`."""
    return json.loads(text, object_hook=_decode)


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and isinstance(obj.get("__float__"), str):
        return float(obj["__float__"])
    return obj


def _check_sqlite_folder(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).expanduser().resolve().parent
    if not folder.is_dir():
        raise StoreError(
            f"cannot create SQLite database {database}: folder {folder} does not exist "
            "(create it or change `database:`)"
        )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def alembic_config(engine: Engine | None = None) -> Any:
    """An Alembic Config for our migrations; with `engine`, env.py migrates that database."""
    import sys

    from alembic.config import Config

    # Config's default stdout is the sys.stdout of when alembic was first imported (a default
    # argument): pass today's, or a replaced-and-closed stream (a test's capture) breaks it.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of `engine`'s database up to `revision` (default: the newest)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: no plugwatch schema yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@cache
def known_revisions() -> dict[str, str | None]:
    """Every revision among our migrations -> the revision it follows (read from the files)."""
    found: dict[str, str | None] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        fields = dict((key, value or None) for key, value in _REVISION.findall(path.read_text()))
        if fields.get("revision"):
            found[str(fields["revision"])] = fields.get("down_revision")
    if not found:
        raise StoreError(f"no migrations found in {migrations_dir()} (a broken installation: "
                         "reinstall plugwatch)")
    return found


def head_revision() -> str:
    """The newest revision among our migrations."""
    revisions = known_revisions()
    followed = set(revisions.values())
    heads = [rev for rev in revisions if rev not in followed]
    if len(heads) != 1:
        raise StoreError(f"the migrations in {migrations_dir()} have {len(heads)} heads "
                         f"({', '.join(sorted(heads))}); merge them into one")
    return heads[0]
