"""The history tables (SQLAlchemy 2). Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float | None] = mapped_column(Float)


class WorkoutSet(Base):
    """One set: from a set_exercise to the next, the camera leaving, or the person gone."""

    __tablename__ = "sets"
    __table_args__ = (Index("ix_sets_open_node", "node_id", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    exercise: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="reps")
    camera_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    half_reps: Mapped[int] = mapped_column(Integer, default=0)
    hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # in good form
    hold_total_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # the cluster node recording it (None on a lone server): who ends it if that node dies
    node_id: Mapped[str | None] = mapped_column(String(64))


class Rep(Base):
    __tablename__ = "reps"
    __table_args__ = (Index("ix_reps_set_index", "set_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("sets.id"))
    index: Mapped[int] = mapped_column(Integer)
    ended_at: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    rom_deg: Mapped[float | None] = mapped_column(Float)
    peak_angle_deg: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    good: Mapped[bool] = mapped_column(Boolean, default=True)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the whole rep


class HoldSecond(Base):
    """Each second of a hold, as it happens (added in migration 0002)."""

    __tablename__ = "hold_seconds"
    __table_args__ = (Index("ix_hold_seconds_set", "set_id", "second"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("sets.id"))
    second: Mapped[int] = mapped_column(Integer)  # 1, 2, ... since the hold began
    at: Mapped[float] = mapped_column(Float)
    good: Mapped[bool] = mapped_column(Boolean)
