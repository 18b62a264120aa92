"""The database: SQLAlchemy tables, Alembic-upgraded on open, one idempotent batch write path.

    store = open_store("sqlite:///plugwatch.db")    # or postgresql+psycopg://user@host/db
    store.ensure_plugs(config.plugs)
    store.write_batch(Batch(readings=[("washer", reading)], transitions=[...]))
    store.transitions(plug="washer", since=t0)
"""

from plugwatch.store.store import Store, open_store
from plugwatch.store.writes import Batch

__all__ = ["Batch", "Store", "open_store"]
