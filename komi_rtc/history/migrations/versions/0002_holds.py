"""holds second by second: sets.kind, hold totals, hold_seconds

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sets") as batch:  # batch: SQLite cannot ALTER much
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="reps"))
        batch.add_column(sa.Column("hold_seconds", sa.Float, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("hold_total_seconds", sa.Float, nullable=False, server_default="0")
        )
    op.create_table(
        "hold_seconds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("set_id", sa.Integer, sa.ForeignKey("sets.id"), nullable=False),
        sa.Column("second", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("good", sa.Boolean, nullable=False),
    )
    op.create_index("ix_hold_seconds_set", "hold_seconds", ["set_id", "second"])


def downgrade() -> None:
    op.drop_index("ix_hold_seconds_set", "hold_seconds")
    op.drop_table("hold_seconds")
    with op.batch_alter_table("sets") as batch:
        batch.drop_column("hold_total_seconds")
        batch.drop_column("hold_seconds")
        batch.drop_column("kind")
