"""Commands: db upgrade (bring the schema up to date), db current (show the schema revision),
db copy (move the whole history to another database, e.g. from SQLite to PostgreSQL)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_CONFIG = "plugwatch.yaml"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `db upgrade` and `db current` to the `plugwatch` parser."""
    db = sub.add_parser("db", help="the database: upgrade, current (the schema), copy")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="create or upgrade the database schema")
    _database_args(upgrade)
    upgrade.set_defaults(func=cmd_upgrade)
    current = db_sub.add_parser("current", help="show the schema revision (changes nothing)")
    _database_args(current)
    current.set_defaults(func=cmd_current)
    copy = db_sub.add_parser("copy", help="copy the whole history into another, empty database")
    copy.add_argument("source", metavar="SRC", help="database URL to read, e.g. sqlite:///plugwatch.db")
    copy.add_argument("target", metavar="DST",
                      help="empty database URL to fill, e.g. postgresql+psycopg://user@host/db")
    copy.set_defaults(func=cmd_copy)


def _database_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", default=None,
                       help=f"take `database:` from this config file (default {DEFAULT_CONFIG})")
    group.add_argument("--database", metavar="URL",
                       help="database URL, e.g. sqlite:///plugwatch.db or "
                            "postgresql+psycopg://user@host/db")


def database_url(args: argparse.Namespace) -> str:
    """The URL from --database (relative SQLite files against the cwd) or from the config."""
    from pathlib import Path

    from plugwatch.config import load_config, resolve_database

    if args.database:
        return resolve_database(args.database, Path.cwd())
    return load_config(args.config or DEFAULT_CONFIG, need_targets=False).database


def cmd_upgrade(args: argparse.Namespace) -> int:
    """`plugwatch db upgrade`: create or upgrade the schema, then say where it stands."""
    from plugwatch.redact import redact
    from plugwatch.store import open_store
    from plugwatch.store.engine import current_revision

    url = database_url(args)
    store = open_store(url)
    try:
        revision = current_revision(store.engine)
    finally:
        store.close()
    print(f"{redact(url)}: schema at revision {revision} (up to date)")
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    """`plugwatch db current`: the schema revision; exit 1 when an upgrade is needed."""
    from sqlalchemy.exc import SQLAlchemyError

    from plugwatch.errors import StoreError
    from plugwatch.redact import redact, redact_text
    from plugwatch.store.engine import current_revision, head_revision, make_engine

    url = database_url(args)
    if _missing_sqlite_file(url):
        print(f"{redact(url)}: no database file yet (run `plugwatch db upgrade`)")
        return 1
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"reading the schema revision of {redact(url)} failed: "
                         f"{redact_text(reason)}") from exc
    finally:
        engine.dispose()
    head = head_revision()
    if revision is None:
        print(f"{redact(url)}: no plugwatch schema yet (run `plugwatch db upgrade`)")
        return 1
    if revision != head:
        print(f"{redact(url)}: schema at revision {revision}, newest is {head} "
              "(run `plugwatch db upgrade`)")
        return 1
    print(f"{redact(url)}: schema at revision {revision} (up to date)")
    return 0


def _missing_sqlite_file(url: str) -> bool:
    """True for a SQLite URL whose file does not exist (connecting would create it)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # make_engine reports a bad URL properly
        return False
    name = parsed.database or ""
    return (parsed.get_backend_name() == "sqlite" and bool(name) and name != ":memory:"
            and not name.startswith("file:") and not Path(name).exists())


def cmd_copy(args: argparse.Namespace) -> int:
    """`plugwatch db copy SRC DST`: every table, ids kept; a progress line per table."""
    from pathlib import Path

    from plugwatch.cli.progress import Progress
    from plugwatch.config import resolve_database
    from plugwatch.redact import redact
    from plugwatch.store import open_store
    from plugwatch.store.copy import copy_history

    source_url, target_url = (resolve_database(u, Path.cwd()) for u in (args.source, args.target))
    if _missing_sqlite_file(source_url):
        from plugwatch.errors import StoreError

        raise StoreError(f"{redact(source_url)}: no such database file")
    source = open_store(source_url)
    try:
        target = open_store(target_url)
        try:
            bar = Progress(1, "copying")

            def progress(table: str, rows: int, total: int) -> None:
                nonlocal bar
                if bar.label != f"copying {table}":
                    bar.close()
                    bar = Progress(total, f"copying {table}")
                bar.step(rows)

            copied = copy_history(source, target, progress)
            bar.close()
        finally:
            target.close()
    finally:
        source.close()
    counts = ", ".join(f"{table} {rows:,}" for table, rows in sorted(copied.items()) if rows)
    print(f"copied {sum(copied.values()):,} rows ({counts or 'the source is empty'}) from "
          f"{redact(source_url)} to {redact(target_url)}")
    return 0
