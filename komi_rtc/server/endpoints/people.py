"""People and their history over HTTP: `/people`, a person's sets (JSON and CSV), progress
series, the recommendation, and tying a camera to a person (docs/protocol.md,
"People and history")."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ...analysis.catalog import Catalog
from ...protocol import InvalidRequest, validate_person_id
from ...protocol.rest import PeopleListing, PersonProgress, PersonSets
from ..app_keys import HISTORY

_MAX_SETS = 1000


def validate_person(value: Any) -> str:
    return validate_person_id(value)


def _person(request: web.Request) -> str:
    return validate_person(request.match_info["person"])


async def people(request: web.Request) -> web.Response:
    history = request.app[HISTORY]
    return web.json_response(PeopleListing(await history.read(history.store.people)).to_wire())


async def person_sets(request: web.Request) -> web.Response:
    person = _person(request)
    history = request.app[HISTORY]
    limit = _limit(request)
    sets = await history.read(history.store.sets, person, limit)
    return web.json_response(PersonSets(person, sets).to_wire())


async def person_sets_csv(request: web.Request) -> web.Response:
    person = _person(request)
    history = request.app[HISTORY]
    text = await history.read(history.store.csv, person)
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{person}-sets.csv"'},
    )


async def person_progress(request: web.Request) -> web.Response:
    """**Extension**: per exercise, one point per set, oldest first, for the charts."""
    person = _person(request)
    history = request.app[HISTORY]
    sets = await history.read(history.store.sets, person, _MAX_SETS)
    series: dict[str, list[dict[str, Any]]] = {}
    for item in reversed(sets):
        series.setdefault(item["exercise"], []).append(
            {
                key: item[key]
                for key in (
                    "id",
                    "kind",
                    "started_at",
                    "ended_at",
                    "reps",
                    "good_reps",
                    "half_reps",
                    "mean_score",
                    "best_rom_deg",
                    "hold_seconds",
                )
            }
        )
    return web.json_response(PersonProgress(person, series).to_wire())


def recommendation_for(person: str, sets: list[dict[str, Any]], catalog: Catalog) -> dict[str, Any]:
    from ...coaching.recommend import recommend

    return recommend(person, sets, catalog, time.time())


async def person_recommendation(request: web.Request, catalog: Catalog) -> web.Response:
    person = _person(request)
    history = request.app[HISTORY]
    sets = await history.read(history.store.sets, person, _MAX_SETS)
    return web.json_response(recommendation_for(person, sets, catalog))


def _limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= 100_000:
        raise InvalidRequest("'limit' must be a positive whole number")
    return int(raw)
