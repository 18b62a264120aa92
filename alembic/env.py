"""Alembic environment for plugwatch: migrates the engine plugwatch hands over, else a URL.

plugwatch passes its Engine in `config.attributes["engine"]` (see plugwatch.store.engine); run by
hand, the database is $PLUGWATCH_DATABASE or `sqlalchemy.url` from alembic.ini.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import text

from plugwatch.store import tables
from plugwatch.store.engine import make_engine

config = context.config
target_metadata = tables.metadata
LOCK_KEY = 0x706C7567  # "plug": serialises concurrent upgrades of one PostgreSQL database


def _url() -> str:
    return os.environ.get("PLUGWATCH_DATABASE") or config.get_main_option("sqlalchemy.url") or ""


def run_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=_url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on a live connection, in one transaction."""
    engine = config.attributes.get("engine") or make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":  # two services starting at once
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
