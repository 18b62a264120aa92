"""The database tables (SQLAlchemy 2 typed declarative models); alembic/ migrates them.

Every time is a float of seconds since the Unix epoch (UTC), as everywhere in plugwatch: compact,
fast to write in bulk, and the same on SQLite and PostgreSQL (DOUBLE PRECISION).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# constraint names fixed once, so migrations name them the same on every database
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every plugwatch table."""

    metadata = MetaData(naming_convention=NAMING)


class Plug(Base):
    """A watched plug, by its config name."""

    __tablename__ = "plugs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    driver: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    tags: Mapped[list[str]] = mapped_column(JSON)
    last_failure: Mapped[str | None] = mapped_column(Text)  # why the latest failing spell began
    last_failure_at: Mapped[float | None] = mapped_column(Double)  # ... and when


class ReadingRow(Base):
    """One good sample; the primary key (plug_id, ts) makes re-writing a reading a no-op."""

    __tablename__ = "readings"
    plug_id: Mapped[int] = mapped_column(ForeignKey("plugs.id"), primary_key=True)
    ts: Mapped[float] = mapped_column(Double, primary_key=True)
    power_w: Mapped[float] = mapped_column(Double)
    relay_on: Mapped[bool | None] = mapped_column(Boolean)
    energy_kwh: Mapped[float | None] = mapped_column(Double)
    __table_args__ = (Index(None, "ts"),)  # retention purge scans by time across plugs


class TransitionRow(Base):
    """A confirmed state change."""

    __tablename__ = "transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plug_id: Mapped[int] = mapped_column(ForeignKey("plugs.id"))
    ts: Mapped[float] = mapped_column(Double)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    power_w: Mapped[float | None] = mapped_column(Double)
    __table_args__ = (UniqueConstraint("plug_id", "ts", "to_state"), Index(None, "ts"))


class RunRow(Base):
    """One finished On spell."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plug_id: Mapped[int] = mapped_column(ForeignKey("plugs.id"))
    start: Mapped[float] = mapped_column(Double)
    end: Mapped[float] = mapped_column(Double)
    duration_s: Mapped[float] = mapped_column(Double)
    energy_wh: Mapped[float] = mapped_column(Double)
    peak_w: Mapped[float] = mapped_column(Double)
    cost: Mapped[float | None] = mapped_column(Double)  # from `price:`; None without one
    currency: Mapped[str | None] = mapped_column(String(8))
    # seconds inside the run with no reading (service down, plug unreachable): energy there is
    # the plug's counter's, or missing without one
    unobserved_s: Mapped[float] = mapped_column(Double, server_default="0")
    __table_args__ = (UniqueConstraint("plug_id", "start"), Index(None, "end"))


class SnapshotRow(Base):
    """The last saved detector state of a plug (restored on start)."""

    __tablename__ = "snapshots"
    plug_id: Mapped[int] = mapped_column(ForeignKey("plugs.id"), primary_key=True)
    ts: Mapped[float] = mapped_column(Double)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertRow(Base):
    """The notification outbox: one row per message to one target."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(512), unique=True)
    rule: Mapped[str] = mapped_column(String(128))
    plug: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)
    due_at: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16))  # writes.ALERT_STATUSES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[float | None] = mapped_column(Double)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[float | None] = mapped_column(Double)
    __table_args__ = (Index(None, "status", "due_at"), Index(None, "created_at"))


class AlertAttemptRow(Base):
    """One delivery attempt of an alert."""

    __tablename__ = "alert_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    ts: Mapped[float] = mapped_column(Double)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class KvRow(Base):
    """Small JSON values kept across restarts (the rules engine's timers)."""

    __tablename__ = "kv_state"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Double)


class LeaseRow(Base):
    """Who samples a plug (or sends the outbox) while several instances share one database."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)  # "plug:<name>" or "sender"
    owner: Mapped[str | None] = mapped_column(String(120))
    expires_at: Mapped[float] = mapped_column(Double)  # the database's clock
    generation: Mapped[int] = mapped_column(BigInteger)  # grows on every claim: fences writes


class InstanceRow(Base):
    """A running instance sharing the plugs; alive while expires_at is ahead of the DB clock."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)


class DeadLetterRow(Base):
    """A record the database refused (a constraint, a value it cannot hold), set aside by the
    writer so that the rest of its batch could be written. `record` is its JSON text."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[float] = mapped_column(Double)  # when it was set aside
    kind: Mapped[str] = mapped_column(String(16))  # reading, transition, run, alert, snapshot, kv
    plug: Mapped[str | None] = mapped_column(String(64))
    record: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)


class AckRow(Base):
    """An acknowledgement: stop reminding of a rule's alert, a plug's, or one rule on one plug."""

    __tablename__ = "acks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[float] = mapped_column(Double)
    rule: Mapped[str | None] = mapped_column(String(128))  # None: any rule
    plug: Mapped[str | None] = mapped_column(String(64))  # None: any plug
    source: Mapped[str] = mapped_column(String(16))  # cli, mqtt, http
    note: Mapped[str | None] = mapped_column(Text)


class SilenceRow(Base):
    """No notifications for a plug, rule or tag until `ends_at` (expiring it moves ends_at)."""

    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # plug, rule, tag
    value: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[float] = mapped_column(Double)
    ends_at: Mapped[float] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)
    comment: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index(None, "ends_at"),)
