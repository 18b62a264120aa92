"""Throw-away PostgreSQL schemas, so tests (and benches) on one shared database never meet.

    with scratch_schema("postgresql+psycopg://postgres@127.0.0.1:5432/test") as url:
        store = open_store(url)        # every table lives in a fresh schema, dropped afterwards
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import quote

from sqlalchemy import text

from plugwatch.store.engine import make_engine


@contextlib.contextmanager
def scratch_schema(base_url: str, prefix: str = "pw_test") -> Iterator[str]:
    """Create a fresh schema, yield a URL whose search_path is that schema, then drop it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = make_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
