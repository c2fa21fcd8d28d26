"""people, sets and reps

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=True),
    )
    op.create_table(
        "sets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("exercise", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(32), nullable=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.Column("half_reps", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_sets_person_id", "sets", ["person_id"])
    op.create_table(
        "reps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("set_id", sa.Integer, sa.ForeignKey("sets.id"), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("rom_deg", sa.Float, nullable=True),
        sa.Column("peak_angle_deg", sa.Float, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("good", sa.Boolean, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_reps_set_index", "reps", ["set_id", "index"])


def downgrade() -> None:
    op.drop_index("ix_reps_set_index", "reps")
    op.drop_table("reps")
    op.drop_index("ix_sets_person_id", "sets")
    op.drop_table("sets")
    op.drop_table("people")
