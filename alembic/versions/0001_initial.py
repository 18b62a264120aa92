"""Initial schema: plugs, readings, transitions, runs, snapshots, the alert outbox, kv_state.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "plugs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("driver", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugs")),
        sa.UniqueConstraint("name", name=op.f("uq_plugs_name")),
    )
    op.create_table(
        "readings",
        sa.Column("plug_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("power_w", sa.Double(), nullable=False),
        sa.Column("relay_on", sa.Boolean(), nullable=True),
        sa.Column("energy_kwh", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["plug_id"], ["plugs.id"], name=op.f("fk_readings_plug_id_plugs")),
        sa.PrimaryKeyConstraint("plug_id", "ts", name=op.f("pk_readings")),
    )
    op.create_index(op.f("ix_readings_ts"), "readings", ["ts"])
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plug_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("power_w", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plug_id"], ["plugs.id"], name=op.f("fk_transitions_plug_id_plugs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transitions")),
        sa.UniqueConstraint(
            "plug_id", "ts", "to_state", name=op.f("uq_transitions_plug_id_ts_to_state")
        ),
    )
    op.create_index(op.f("ix_transitions_ts"), "transitions", ["ts"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plug_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("end", sa.Double(), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("energy_wh", sa.Double(), nullable=False),
        sa.Column("peak_w", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["plug_id"], ["plugs.id"], name=op.f("fk_runs_plug_id_plugs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("plug_id", "start", name=op.f("uq_runs_plug_id_start")),
    )
    op.create_index(op.f("ix_runs_end"), "runs", ["end"])
    op.create_table(
        "snapshots",
        sa.Column("plug_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["plug_id"], ["plugs.id"], name=op.f("fk_snapshots_plug_id_plugs")),
        sa.PrimaryKeyConstraint("plug_id", name=op.f("pk_snapshots")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=512), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("plug", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("due_at", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.Double(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    op.create_index(op.f("ix_alerts_created_at"), "alerts", ["created_at"])
    op.create_index(op.f("ix_alerts_status_due_at"), "alerts", ["status", "due_at"])
    op.create_table(
        "alert_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_attempts_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_attempts")),
    )
    op.create_index(op.f("ix_alert_attempts_alert_id"), "alert_attempts", ["alert_id"])
    op.create_table(
        "kv_state",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kv_state")),
    )


def downgrade() -> None:
    """Drop every table (all recorded data is lost)."""
    for table in ("kv_state", "alert_attempts", "alerts", "snapshots", "runs", "transitions",
                  "readings", "plugs"):
        op.drop_table(table)
