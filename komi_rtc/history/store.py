"""The history database: SQLite in the state dir by default (WAL), PostgreSQL with `--db`.

`HistoryStore` is synchronous and used from one thread only; `History` is what the server
holds: every call runs on that one thread, in order, so nothing waits on the event loop
and a set's rows are written in the order they happened. Every completed rep is committed
on its own as it happens, so a server killed mid-set keeps it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, create_engine, event, func, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from .schema import HoldSecond, Person, Rep, WorkoutSet

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")

CSV_COLUMNS = [
    "person",
    "set_id",
    "exercise",
    "profile",
    "camera_id",
    "set_started_at",
    "rep",
    "ended_at",
    "score",
    "rom_deg",
    "peak_angle_deg",
    "duration_s",
    "good",
    "errors",
]


def default_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'history.sqlite3'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # in WAL: a process crash loses nothing
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # people's workout history: readable by this user only (SQLite gives its -wal
            # and -shm files the database file's mode)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(path, 0o600)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class DatabaseUnavailable(RuntimeError):
    """The history database cannot be used: one line a person can act on."""


def check_database(url: str, timeout_s: float = 5.0) -> None:
    """Connect once, before anything else starts (a bad `--db` is said in one line, not in
    170 lines of driver tracebacks from a server half started). The password never shows."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparsable URL is the same one-line answer
        raise DatabaseUnavailable(
            "--db is not a database URL (e.g. postgresql://user:password@host/komi, or "
            "sqlite:///path/history.sqlite3)"
        ) from None
    try:
        if url.startswith("sqlite"):
            engine = make_engine(url)
        else:
            engine = create_engine(url, connect_args=_connect_timeout(url, timeout_s))
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except (ImportError, NoSuchModuleError):
        raise DatabaseUnavailable(
            f"{shown}: this kind of database is not supported (use postgresql:// or sqlite:///)"
        ) from None
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUnavailable(
            f"cannot open the history database {shown}: {reason[0] if reason else exc}"
        ) from None


def _connect_timeout(url: str, timeout_s: float) -> dict[str, Any]:
    return {"connect_timeout": int(timeout_s)} if url.startswith("postgresql") else {}


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic (an empty database included)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # cluster nodes starting together on one database migrate one after another
            # (the lock ends with the transaction)
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(745463001)")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def schema_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass
class SetHandle:
    """A set being recorded; `id` is filled in on the history thread, before any later
    write of the set runs (same thread, in order)."""

    id: int | None = None


class HistoryStore:
    def __init__(self, url: str, node_id: str | None = None) -> None:
        """`node_id`: this cluster node, written on every set it begins (None alone)."""
        self.url = url
        self.node_id = node_id
        self.engine = make_engine(url)

    # ------------------------------------------------------------ writes

    def prepare(
        self,
        now: float,
        spare: frozenset[str] = frozenset(),
        live_nodes: frozenset[str] | None = None,
    ) -> int:
        """Migrate, then end the sets a previous run left open (killed mid-set): each ends
        at its last rep. `spare`: cameras live on other nodes of a cluster, whose open sets
        are still running. `live_nodes`: in a cluster, the nodes beating now; the open sets
        of any other node are ended too (a node that died when nobody was there to see it,
        or that had a random id). Returns how many were closed."""
        migrate(self.engine)
        condition: ColumnElement[bool] | None = (
            WorkoutSet.camera_id.not_in(spare) if spare else None
        )
        if condition is not None and self.node_id is not None:
            # this node's own last run, also for a camera that moved on to another node
            condition = condition | (WorkoutSet.node_id == self.node_id)
        closed = self._end_dangling(condition)
        if live_nodes is not None:
            gone = WorkoutSet.node_id.is_not(None) & WorkoutSet.node_id.not_in(live_nodes)
            closed += self._end_dangling(gone, delete_empty=False)
        return closed

    def end_sets_of_node(self, node_id: str, camera_ids: list[str], started_before: float) -> int:
        """End the open sets a cluster node that died was recording (nobody else can); the
        set one of its cameras began since on a live node is kept, even when it began
        before the death was noticed. Sets recorded before sets had a node (schema 0002)
        fall back to the camera and the time."""
        unknown = WorkoutSet.node_id.is_(None) & WorkoutSet.camera_id.in_(camera_ids)
        # only sets begun before the death was seen: the node may come back with its id
        return self._end_dangling(
            ((WorkoutSet.node_id == node_id) | unknown) & (WorkoutSet.started_at < started_before),
            delete_empty=False,  # the node may only have stalled: never remove a set
        )

    def _end_dangling(self, condition: Any, delete_empty: bool = True) -> int:
        with Session(self.engine) as db, db.begin():
            query = select(WorkoutSet).where(WorkoutSet.ended_at.is_(None))
            if condition is not None:
                query = query.where(condition)
            dangling = db.scalars(query).all()
            for row in dangling:
                last = db.scalar(select(func.max(Rep.ended_at)).where(Rep.set_id == row.id))
                held = db.scalar(select(func.max(HoldSecond.at)).where(HoldSecond.set_id == row.id))
                if last is None and held is None and not row.half_reps and delete_empty:
                    db.delete(row)  # nothing done in it
                    continue
                row.ended_at = max(t for t in (last, held, row.started_at) if t is not None)
                row.end_reason = "server stopped"
            return len(dangling)

    def ensure_person(self, person: str, now: float) -> None:
        with Session(self.engine) as db, db.begin():
            row = db.get(Person, person)
            if row is None:
                db.add(Person(id=person, created_at=now, last_seen=now))
            else:
                row.last_seen = now

    def start_set(
        self,
        handle: SetHandle,
        person: str,
        exercise: str,
        profile: str | None,
        kind: str,
        camera_id: str,
        started_at: float,
    ) -> None:
        with Session(self.engine) as db, db.begin():
            if db.get(Person, person) is None:
                db.add(Person(id=person, created_at=started_at, last_seen=started_at))
                db.flush()
            row = WorkoutSet(
                person_id=person,
                exercise=exercise,
                profile=profile,
                kind=kind,
                camera_id=camera_id,
                started_at=started_at,
                node_id=self.node_id,
                half_reps=0,
                hold_seconds=0.0,
                hold_total_seconds=0.0,
            )
            db.add(row)
            db.flush()
            handle.id = row.id

    def add_rep(self, handle: SetHandle, person: str, rep: dict[str, Any], at: float) -> None:
        if handle.id is None:
            return
        with Session(self.engine) as db, db.begin():
            db.add(
                Rep(
                    set_id=handle.id,
                    index=int(rep.get("index", 0)),
                    ended_at=float(rep.get("ended_at") or at),
                    score=_number(rep.get("score")),
                    rom_deg=_number(rep.get("rom_deg", rep.get("angle_reached_deg"))),
                    peak_angle_deg=_number(rep.get("peak_angle_deg")),
                    duration_s=_number(rep.get("duration_s")),
                    good=bool(rep.get("good", True)),
                    errors=[str(e) for e in rep.get("errors", [])],
                    detail=rep,
                )
            )
            db.execute(update(Person).where(Person.id == person).values(last_seen=at))

    def add_hold_second(
        self, handle: SetHandle, second: int, at: float, good: bool, good_s: float, total_s: float
    ) -> None:
        if handle.id is None:
            return
        with Session(self.engine) as db, db.begin():
            db.add(HoldSecond(set_id=handle.id, second=second, at=at, good=good))
            db.execute(
                update(WorkoutSet)
                .where(WorkoutSet.id == handle.id)
                .values(hold_seconds=good_s, hold_total_seconds=total_s)
            )

    def set_half_reps(self, handle: SetHandle, half_reps: int) -> None:
        if handle.id is None:
            return
        with Session(self.engine) as db, db.begin():
            db.execute(
                update(WorkoutSet).where(WorkoutSet.id == handle.id).values(half_reps=half_reps)
            )

    def end_set(self, handle: SetHandle, ended_at: float, reason: str) -> None:
        """End a set; a set in which nothing was done (no rep, no second held) is dropped,
        so choosing an exercise and changing one's mind leaves no trace."""
        if handle.id is None:
            return
        with Session(self.engine) as db, db.begin():
            reps = db.scalar(select(func.count(Rep.id)).where(Rep.set_id == handle.id))
            held = db.scalar(
                select(func.count(HoldSecond.id)).where(HoldSecond.set_id == handle.id)
            )
            row = db.get(WorkoutSet, handle.id)
            if row is None or row.ended_at is not None:
                return
            if not reps and not held and not row.half_reps:
                db.delete(row)
                return
            row.ended_at = ended_at
            row.end_reason = reason

    # ------------------------------------------------------------ reads

    def people(self) -> list[dict[str, Any]]:
        with Session(self.engine) as db:
            counts = dict(
                db.execute(
                    select(WorkoutSet.person_id, func.count(WorkoutSet.id)).group_by(
                        WorkoutSet.person_id
                    )
                ).all()
            )
            rows = db.scalars(select(Person).order_by(Person.id)).all()
            return [
                {
                    "id": p.id,
                    "name": p.name,
                    "sets": int(counts.get(p.id, 0)),
                    "last_seen": p.last_seen,
                }
                for p in rows
            ]

    def sets(self, person: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The API's set objects, newest first."""
        with Session(self.engine) as db:
            query = (
                select(WorkoutSet)
                .where(WorkoutSet.person_id == person)
                .order_by(WorkoutSet.started_at.desc(), WorkoutSet.id.desc())
            )
            if limit is not None:
                query = query.limit(limit)
            rows = db.scalars(query).all()
            reps_by_set: dict[int, list[Rep]] = {row.id: [] for row in rows}
            if rows:
                for rep in db.scalars(
                    select(Rep)
                    .where(Rep.set_id.in_(list(reps_by_set)))
                    .order_by(Rep.set_id, Rep.index, Rep.id)
                ):
                    reps_by_set[rep.set_id].append(rep)
            return [_set_json(row, reps_by_set[row.id]) for row in rows]

    def best(
        self, person: str, exercise: str, kind: str, excluding: SetHandle
    ) -> dict[str, Any] | None:
        """The person's best earlier set of `exercise`: most good reps (then score) for
        reps, longest good hold for holds, widest range for range exercises."""
        with Session(self.engine) as db:
            ids = db.scalars(
                select(WorkoutSet.id)
                .where(WorkoutSet.person_id == person, WorkoutSet.exercise == exercise)
                .where(WorkoutSet.id != (excluding.id or -1))
                .order_by(WorkoutSet.started_at.desc())
                .limit(500)
            ).all()
        if not ids:
            return None
        candidates = [s for s in self.sets(person) if s["id"] in set(ids)]

        def key(item: dict[str, Any]) -> tuple[float, float]:
            if kind == "hold":
                return (item["hold_seconds"], 0.0)
            if kind == "range":
                return (item["best_rom_deg"] or 0.0, item["reps"])
            return (item["good_reps"], item["mean_score"] or 0.0)

        top = max(candidates, key=key)
        return {
            "set_id": top["id"],
            "started_at": top["started_at"],
            "reps": top["reps"],
            "good_reps": top["good_reps"],
            "mean_score": top["mean_score"],
            "best_rom_deg": top["best_rom_deg"],
            "hold_seconds": top["hold_seconds"],
        }

    def csv(self, person: str) -> str:
        """A person's reps, a line each (CSV_COLUMNS), oldest first; times in ISO 8601."""
        out = io.StringIO()
        # RFC 4180's CRLF: a cell holding a CR is then quoted (with "\n" it stayed bare,
        # and a reader ended the row there)
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for item in reversed(self.sets(person)):  # oldest first reads like a log
            for rep in item["reps_detail"]:
                row = [
                    person,
                    item["id"],
                    item["exercise"],
                    item["profile"] or "",
                    item["camera_id"],
                    _local_time(item["started_at"]),
                    rep["index"],
                    _local_time(rep["ended_at"]),
                    _blank(rep["score"]),
                    _blank(rep["rom_deg"]),
                    _blank(rep["peak_angle_deg"]),
                    _blank(rep["duration_s"]),
                    "1" if rep["good"] else "0",
                    ";".join(rep["errors"]),
                ]
                writer.writerow([_csv_cell(value) for value in row])
        return out.getvalue()

    def close(self) -> None:
        self.engine.dispose()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _local_time(seconds: float | None) -> str:
    """Epoch seconds as ISO 8601 in the server's time zone, with its offset and to the
    millisecond ("2026-05-28T18:04:05.120+09:00"): a person reads it, and a program (or a
    spreadsheet's date parser) gets the exact instant."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).astimezone().isoformat("T", "milliseconds")


# A spreadsheet runs a cell that begins with one of these as a formula (CSV injection; the
# OWASP list): "=HYPERLINK(...)", "-1-1", "@SUM(...)".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading `'`, which
    spreadsheets show as text (OWASP). Only text: the numeric columns hold Python numbers,
    written as such, and a negative one (an angle, "-12.5") is a number to any spreadsheet,
    not a formula; a quote would turn it into text and break sums and charts."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _set_json(row: WorkoutSet, reps: list[Rep]) -> dict[str, Any]:
    scores = [r.score for r in reps if r.score is not None]
    roms = [r.rom_deg for r in reps if r.rom_deg is not None]
    errors: Counter[str] = Counter()
    for rep in reps:
        errors.update(rep.errors or [])
    return {
        "id": row.id,
        "exercise": row.exercise,
        "profile": row.profile,
        "kind": row.kind,
        "camera_id": row.camera_id,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "end_reason": row.end_reason,
        "reps": len(reps),
        "good_reps": sum(1 for r in reps if r.good),
        "half_reps": row.half_reps,
        "mean_score": round(sum(scores) / len(scores), 1) if scores else None,
        "errors": dict(errors.most_common()),
        "hold_seconds": round(row.hold_seconds or 0.0, 1),
        "hold_total_seconds": round(row.hold_total_seconds or 0.0, 1),
        "best_rom_deg": round(max(roms), 1) if roms else None,
        "reps_detail": [
            {
                "index": r.index,
                "ended_at": r.ended_at,
                "score": r.score,
                "rom_deg": r.rom_deg,
                "peak_angle_deg": r.peak_angle_deg,
                "duration_s": r.duration_s,
                "good": r.good,
                "errors": list(r.errors or []),
            }
            for r in reps
        ],
    }


class History:
    """The server's handle: every store call runs on one thread, in submission order.
    Writes are fire-and-forget (a failure is logged, never raised into the frame path);
    reads are awaited."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="history")
        self._pending: set[Future[Any]] = set()
        self.writes = 0
        self.failures = 0

    def write(self, fn: Callable[..., Any], *args: Any) -> None:
        future = self._executor.submit(fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: Future[Any]) -> None:
        self._pending.discard(future)
        self.writes += 1
        exc = future.exception()
        if exc is not None:
            self.failures += 1
            logger.error("history write failed: %s", exc, exc_info=exc)

    def query(self, then: Callable[[T], None], fn: Callable[..., T], *args: Any) -> None:
        """Run a read after the writes before it; `then(result)` runs on the event loop."""

        def run() -> None:
            result = fn(*args)
            self._loop.call_soon_threadsafe(then, result)

        self.write(run)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def flush(self) -> None:
        """Wait until every write submitted so far is done."""
        await self.read(lambda: None)

    async def close(self) -> None:
        await self.flush()
        self._executor.shutdown(wait=True)
        self.store.close()
