"""Bulk INSERTs of plain tuples, sent the way each database takes them cheapest (the writer's hot
path: thousands of readings a second, in the thread that shares the GIL with sampling).

SQLAlchemy's per-row parameter handling costs several times the database's own work, so a Bulk
hands plain tuples to the driver:
- SQLite: the driver's executemany of a one-row `INSERT ... VALUES (?, ...) ON CONFLICT ...`.
  Multi-row VALUES statements of 100 rows cost less alone (bench_store --writer) but more in the
  service (writer thread 15.7 against 11.9 µs per reading at 10,000 plugs, 3 runs each): a long
  step without the GIL is interrupted by the event loop on the same core;
- PostgreSQL: one `INSERT ... SELECT * FROM unnest(%b::INTEGER[], ...) ON CONFLICT ...` with each
  column as one binary array, not psycopg's executemany (a Bind/Execute per row, 3x the CPU). The
  float columns' values are converted to float first: psycopg dumps only lists of one type, and
  an int among the floats would make the database refuse the batch.

The ON CONFLICT clause applies row by row as with one INSERT per row. The rows of one call must
not repeat a key their clause updates (PostgreSQL refuses that; DO NOTHING is fine). JSON columns
take the JSON text (`engine.dumps`): it is stored as is. Driver errors surface as SQLAlchemy's,
like those of any other statement (exec_driver_sql), so Store's one boundary converts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Float, Table

from plugwatch.errors import StoreError

_FLOAT_TYPES = {float, type(None)}


class Bulk:
    """A bulk INSERT of tuples (in the order of the table's columns) into `table`."""

    def __init__(self, table: Table, conflict: str) -> None:
        self.table = table
        self.conflict = conflict  # e.g. "ON CONFLICT DO NOTHING"
        self.columns = tuple(c.name for c in table.columns)

    def __repr__(self) -> str:
        return f"Bulk({self.table.name!r}, {self.conflict!r})"

    def insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert `rows` on `conn` (the caller owns the transaction)."""
        if not rows:
            return
        if conn.dialect.name == "postgresql":
            self._insert_postgresql(conn, rows)
            return
        if conn.dialect.name != "sqlite":
            raise unsupported(conn)
        conn.exec_driver_sql(self._values_sql, list(rows))

    @cached_property
    def _values_sql(self) -> str:
        marks = ", ".join(["?"] * len(self.columns))
        return (f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) VALUES ({marks}) "
                f"{self.conflict}")

    def _insert_postgresql(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        arrays = []
        for values, is_float in zip(zip(*rows, strict=True), self._float_columns, strict=True):
            if is_float and not set(map(type, values)) <= _FLOAT_TYPES:
                values = tuple(None if v is None else float(v) for v in values)
            arrays.append(list(values))
        conn.exec_driver_sql(self._unnest_sql, tuple(arrays))

    @cached_property
    def _float_columns(self) -> tuple[bool, ...]:
        return tuple(isinstance(c.type, Float) for c in self.table.columns)

    @cached_property
    def _unnest_sql(self) -> str:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()
        arrays = ", ".join(f"%b::{c.type.compile(dialect=dialect)}[]" for c in self.table.columns)
        return (f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) "
                f"SELECT * FROM unnest({arrays}) {self.conflict}")


def unsupported(conn: Connection) -> StoreError:
    """The error for a database other than SQLite and PostgreSQL."""
    return StoreError(f"unsupported database {conn.dialect.name!r} (use SQLite or PostgreSQL)")
