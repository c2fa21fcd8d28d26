"""sets.node_id: the cluster node that recorded the set

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sets") as batch:  # batch: SQLite cannot ALTER much
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
    op.create_index("ix_sets_open_node", "sets", ["node_id", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_sets_open_node", "sets")
    with op.batch_alter_table("sets") as batch:
        batch.drop_column("node_id")
