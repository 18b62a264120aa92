"""Moving a whole history from one database to another (`plugwatch db copy SRC DST`).

Both databases are brought to the newest schema first; the target must hold no plugs yet. Every
table is copied in dependency order (plugs before their readings), in batches, keeping the ids,
so references stay right; PostgreSQL's id sequences are moved past the copied ids afterwards.
Leases and instances are not copied: they describe instances running now, not history.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Integer, Table, func, insert, select, text

from plugwatch.errors import StoreError
from plugwatch.store import tables
from plugwatch.store.store import Store

BATCH = 5000
NOT_COPIED = {"leases", "instances"}


def copy_history(source: Store, target: Store,
                 progress: Callable[[str, int, int], None] = lambda *_: None) -> dict[str, int]:
    """Copy every table of `source` into the empty `target`; {table: rows copied}.
    `progress(table, rows, total)` is called after every batch of `rows` rows."""
    to_copy = [t for t in tables.metadata.sorted_tables if t.name not in NOT_COPIED]
    plugs = tables.plugs
    with target._guard("reading"), target.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(plugs)).scalar_one()
    if present:
        raise StoreError(f"{target.where} already holds {present} plug(s): db copy fills an empty "
                         "database only (create a new one, or drop its tables)")
    copied: dict[str, int] = {}
    with (source._guard("reading"), source.engine.connect() as src,
          target._guard("writing"), target.engine.begin() as dst):
        for table in to_copy:
            total = src.execute(select(func.count()).select_from(table)).scalar_one()
            done = 0
            result = src.execution_options(yield_per=BATCH).execute(select(table))
            for rows in result.partitions(BATCH):
                dst.execute(insert(table), [dict(row._mapping) for row in rows])
                done += len(rows)
                progress(table.name, len(rows), total)
            copied[table.name] = done
        if dst.dialect.name == "postgresql":
            _advance_sequences(dst, to_copy)
    return copied


def _advance_sequences(conn: Connection, tables: list[Table]) -> None:
    """After inserting explicit ids, move each serial id's sequence past the largest one."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and isinstance(keys[0].type, Integer):
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                f"COALESCE((SELECT max({keys[0].name}) FROM {table.name}), 0) + 1, false)"),
                {"t": table.name, "c": keys[0].name})
