"""Dead letters (records the database refused, set aside by the writer) and each plug's last
failure reason (shown by `plugwatch status`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the dead_letters table and plugs.last_failure / last_failure_at."""
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plug", sa.String(length=64), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("plugs") as batch:
        batch.add_column(sa.Column("last_failure", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_failure_at", sa.Double(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("plugs") as batch:
        batch.drop_column("last_failure_at")
        batch.drop_column("last_failure")
    op.drop_table("dead_letters")
