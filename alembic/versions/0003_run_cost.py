"""Runs carry their cost: runs.cost and runs.currency (from `price:`; NULL without one).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two nullable columns (existing runs keep no cost)."""
    op.add_column("runs", sa.Column("cost", sa.Double(), nullable=True))
    op.add_column("runs", sa.Column("currency", sa.String(length=8), nullable=True))


def downgrade() -> None:
    """Drop them again (SQLite rebuilds the table)."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("currency")
        batch.drop_column("cost")
