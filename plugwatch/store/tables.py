"""The database tables (SQLAlchemy Core); alembic/ migrates them.

Every time is a float of seconds since the Unix epoch (UTC), as everywhere in plugwatch: compact,
fast to write in bulk, and the same on SQLite and PostgreSQL (DOUBLE PRECISION). Core tables, not
ORM classes: plugwatch reads and writes rows, never objects, and `plugwatch status` starts faster
without sqlalchemy.orm.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# constraint names fixed once, so migrations name them the same on every database
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


metadata = MetaData(naming_convention=NAMING)


# A watched plug, by its config name.
plugs = Table(
    "plugs", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), unique=True, nullable=False),
    Column("driver", String(32), nullable=False),
    Column("address", String(255), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("last_failure", Text),  # why the latest failing spell began
    Column("last_failure_at", Double),  # ... and when
)


# One good sample; the primary key (plug_id, ts) makes re-writing a reading a no-op.
readings = Table(
    "readings", metadata,
    Column("plug_id", ForeignKey("plugs.id"), primary_key=True),
    Column("ts", Double, primary_key=True),
    Column("power_w", Double, nullable=False),
    Column("relay_on", Boolean),
    Column("energy_kwh", Double),
    Index(None, "ts"),  # retention purge scans by time across plugs
)


# A confirmed state change.
transitions = Table(
    "transitions", metadata,
    Column("id", Integer, primary_key=True),
    Column("plug_id", ForeignKey("plugs.id"), nullable=False),
    Column("ts", Double, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("power_w", Double),
    UniqueConstraint("plug_id", "ts", "to_state"), Index(None, "ts"),
)


# One finished On spell.
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("plug_id", ForeignKey("plugs.id"), nullable=False),
    Column("start", Double, nullable=False),
    Column("end", Double, nullable=False),
    Column("duration_s", Double, nullable=False),
    Column("energy_wh", Double, nullable=False),
    Column("peak_w", Double, nullable=False),
    Column("cost", Double),  # from `price:`; None without one
    Column("currency", String(8)),
    # seconds inside the run with no reading (service down, plug unreachable): energy there is
    # the plug's counter's, or missing without one
    Column("unobserved_s", Double, server_default="0", nullable=False),
    UniqueConstraint("plug_id", "start"), Index(None, "end"),
)


# The last saved detector state of a plug (restored on start).
snapshots = Table(
    "snapshots", metadata,
    Column("plug_id", ForeignKey("plugs.id"), primary_key=True),
    Column("ts", Double, nullable=False),
    Column("state", JSON, nullable=False),
)


# The notification outbox: one row per message to one target.
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("dedupe_key", String(512), unique=True, nullable=False),
    Column("rule", String(128), nullable=False),
    Column("plug", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("due_at", Double, nullable=False),
    Column("status", String(16), nullable=False),  # writes.ALERT_STATUSES
    Column("attempts", Integer, default=0, nullable=False),
    Column("last_attempt_at", Double),
    Column("last_error", Text),
    Column("sent_at", Double),
    Index(None, "status", "due_at"), Index(None, "created_at"),
)


# One delivery attempt of an alert.
alert_attempts = Table(
    "alert_attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", ForeignKey("alerts.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("ts", Double, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
)


# Small JSON values kept across restarts (the rules engine's timers).
kv_state = Table(
    "kv_state", metadata,
    Column("key", String(255), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", Double, nullable=False),
)


# Who samples a plug (or sends the outbox) while several instances share one database.
leases = Table(
    "leases", metadata,
    Column("name", String(80), primary_key=True),  # "plug:<name>" or "sender"
    Column("owner", String(120)),
    Column("expires_at", Double, nullable=False),  # the database's clock
    Column("generation", BigInteger, nullable=False),  # grows on every claim: fences writes
)


# A running instance sharing the plugs; alive while expires_at is ahead of the DB clock.
instances = Table(
    "instances", metadata,
    Column("id", String(120), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
)


# A record the database refused (a constraint, a value it cannot hold), set aside by the
# writer so that the rest of its batch could be written. `record` is its JSON text.
dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Double, nullable=False),  # when it was set aside
    Column("kind", String(16), nullable=False),  # reading, transition, run, alert, snapshot, kv
    Column("plug", String(64)),
    Column("record", Text, nullable=False),
    Column("error", Text, nullable=False),
)


# An acknowledgement: stop reminding of a rule's alert, a plug's, or one rule on one plug.
acks = Table(
    "acks", metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Double, nullable=False),
    Column("rule", String(128)),  # None: any rule
    Column("plug", String(64)),  # None: any plug
    Column("source", String(16), nullable=False),  # cli, mqtt, http
    Column("note", Text),
)


# No notifications for a plug, rule or tag until `ends_at` (expiring it moves ends_at).
silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # plug, rule, tag
    Column("value", String(128), nullable=False),
    Column("starts_at", Double, nullable=False),
    Column("ends_at", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("comment", Text),
    Index(None, "ends_at"),
)
