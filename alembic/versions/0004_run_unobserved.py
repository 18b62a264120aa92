"""Runs carry the time nobody saw: runs.unobserved_s (gaps without readings inside the run).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column; runs recorded before were all observed as far as anyone knows (0)."""
    op.add_column("runs", sa.Column("unobserved_s", sa.Double(), nullable=False,
                                    server_default="0"))


def downgrade() -> None:
    """Drop it again (SQLite rebuilds the table)."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("unobserved_s")
