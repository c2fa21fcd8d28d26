"""The KOMI RTC server as an aiohttp app: `create_app(config)` and its route table, in which
every route declares who may call it (middleware.py's `Rule`; a route without one is
admin-only). The handlers live in endpoints/, one module per resource."""

from __future__ import annotations

import logging

from aiohttp import web

from ..analysis.catalog import Catalog
from ..pose.worker_pool import PoseWorkerPool
from .access import (
    MINTED_FILE,
    REVOKED_FILE,
    LiveConnections,
    TokenAuthority,
    load_admin_token,
)
from .app_keys import (
    AUTHORITY,
    CATALOG,
    CONFIG,
    LIVE,
    MONITOR_SOCKETS,
    REGISTRY,
    RULES,
    SIGNALING,
    SLOTS,
)
from .camera_registry import CameraRegistry
from .cluster import (
    check_admin_token,
    check_node_id,
    check_redis,
    cluster_routing,
    default_public_url,
)
from .config import ServerConfig
from .endpoints.cameras import (
    cameras,
    offer,
    set_camera_exercise,
    set_camera_person,
    stats,
    ws_camera,
)
from .endpoints.cluster import cluster_nodes, release_camera
from .endpoints.monitor_socket import ws_monitor
from .endpoints.pages import app_file, client_config, exercises, healthz, index, page
from .endpoints.people import (
    people,
    person_progress,
    person_recommendation,
    person_sets,
    person_sets_csv,
)
from .endpoints.stations import (
    board_image,
    calibrate_station,
    set_station,
    set_station_calibration,
    set_station_exercise,
    station_calibration,
    station_join,
    stations,
)
from .endpoints.tokens import list_tokens, mint_token, revoke_token, whoami
from .endpoints.whip import WhipEndpoints
from .frame_images import FrameImages
from .http_bodies import read_body
from .lifecycle import close_connections, server_lifecycle
from .limits import AddressSlots
from .middleware import Handler, Rule, access_control, bounded_urls, cross_origin, json_errors

logger = logging.getLogger(__name__)

# aiohttp's parser refuses longer request lines itself (400); shorter ones reach
# `bounded_urls`, which answers 414 with a JSON body
MAX_REQUEST_LINE = 65536


def create_app(config: ServerConfig, pool: PoseWorkerPool | None = None) -> web.Application:
    """Build the server. A given `pool` is used, not owned (tests share one)."""
    app = web.Application(
        middlewares=[cross_origin, json_errors, bounded_urls, access_control, cluster_routing],
        client_max_size=config.max_body_bytes or 1024**3,
        handler_args={"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_REQUEST_LINE},
    )
    app[CONFIG] = config
    app[CATALOG] = catalog = Catalog(config.exercise_dir)  # CatalogError for a bad file
    registry = CameraRegistry(config.max_cameras)
    app[REGISTRY] = registry
    if config.redis_url:
        check_redis(config.redis_url)
        if config.node_id:
            public_url = config.public_url or default_public_url(config)
            check_node_id(config.redis_url, config.node_id, public_url)
    authority: TokenAuthority | None = None
    admin: str | None = None
    if config.redis_url:  # every node is given the cluster's token: its keys derive from it
        if config.admin_token or config.admin_token_file:
            admin = load_admin_token(config.admin_token, config.admin_token_file, config.state_dir)
        check_admin_token(config.redis_url, admin)  # none, or not the cluster's: refused
    if not config.open_access:
        admin = admin or load_admin_token(
            config.admin_token, config.admin_token_file, config.state_dir
        )
        authority = TokenAuthority(
            admin, config.state_dir / REVOKED_FILE, config.state_dir / MINTED_FILE
        )
        app[AUTHORITY] = authority
    app[SLOTS] = slots = AddressSlots(config.max_connections_per_address)
    app[MONITOR_SOCKETS] = set()
    app[LIVE] = live = LiveConnections()

    app.cleanup_ctx.append(
        server_lifecycle(config, registry, catalog, authority, admin, slots, live, pool)
    )

    app.on_shutdown.append(close_connections)
    rules: dict[tuple[str, str], Rule] = {}
    app[RULES] = rules

    def route(method: str, path: str, handler: Handler, rule: Rule) -> None:
        if method == "GET":
            app.router.add_get(path, handler)  # and HEAD
        else:
            app.router.add_route(method, path, handler)
        rules[(method, path)] = rule

    images = FrameImages(app[REGISTRY])
    route("GET", "/", index, Rule.PUBLIC)
    route("GET", "/healthz", healthz, Rule.PUBLIC)
    route("GET", "/favicon.ico", page("favicon.svg"), Rule.PUBLIC)
    route("GET", "/camera", page("camera.html"), Rule.PAGE)
    # the installable camera app: what a browser fetches with no token (README, "Phones")
    manifest = app_file("camera.webmanifest", "application/manifest+json")
    route("GET", "/camera.webmanifest", manifest, Rule.PUBLIC)
    route("GET", "/camera-sw.js", app_file("camera-sw.js", "text/javascript"), Rule.PUBLIC)
    route("GET", "/monitor", page("monitor.html"), Rule.MONITOR_PAGE)
    route("GET", "/config.json", client_config, Rule.ANY)
    route("GET", "/exercises", exercises, Rule.ANY)
    route("GET", "/cameras", cameras, Rule.WATCH)
    route("GET", "/stats", stats, Rule.WATCH)
    route("GET", "/cluster", cluster_nodes, Rule.WATCH)
    route("POST", "/cameras/{camera_id}/exercise", set_camera_exercise, Rule.SEE)
    route("POST", "/cameras/{camera_id}/person", set_camera_person, Rule.SEE)
    route("GET", "/people", people, Rule.WATCH)
    route("GET", "/people/{person}/sets", person_sets, Rule.PERSON)
    route("GET", "/people/{person}/sets.csv", person_sets_csv, Rule.PERSON)
    route("GET", "/people/{person}/progress", person_progress, Rule.PERSON)

    async def recommendation(request: web.Request) -> web.Response:
        return await person_recommendation(request, catalog)

    route("GET", "/people/{person}/recommendation", recommendation, Rule.PERSON)
    route("GET", "/history", page("history.html"), Rule.HISTORY_PAGE)
    route("GET", "/stations", stations, Rule.WATCH)
    route("POST", "/stations/{station_id}", set_station, Rule.WATCH)
    route("POST", "/stations/{station_id}/exercise", set_station_exercise, Rule.WATCH)
    route("GET", "/stations/{station_id}/join", station_join, Rule.WATCH)
    route("POST", "/stations/{station_id}/calibrate", calibrate_station, Rule.WATCH)
    route("POST", "/stations/{station_id}/calibration", set_station_calibration, Rule.WATCH)
    route("PUT", "/stations/{station_id}/calibration", set_station_calibration, Rule.WATCH)
    route("GET", "/stations/{station_id}/calibration", station_calibration, Rule.WATCH)
    route("GET", "/calibration/board.png", board_image, Rule.ANY)
    route("GET", "/latest_image/{camera_id}", images.latest_image, Rule.SEE)
    route("GET", "/get-image/{camera_id}", images.get_image, Rule.SEE)
    route("POST", "/offer", offer, Rule.OFFER)
    whip = WhipEndpoints(config, lambda: app[SIGNALING], read_body)  # WHIP in, WHEP out
    route("POST", "/whip/{camera_id}", whip.ingest, Rule.ANY)  # the handler: stream as it?
    route("POST", "/whep/{camera_id}", whip.egress, Rule.SEE)
    for kind in ("whip", "whep"):  # a session: its client's token (the handler checks)
        route("OPTIONS", f"/{kind}/{{camera_id}}", whip.options, Rule.ANY)
        route("PATCH", f"/{kind}/{{camera_id}}/{{resource_id}}", whip.update, Rule.ANY)
        route("DELETE", f"/{kind}/{{camera_id}}/{{resource_id}}", whip.end, Rule.ANY)
    route("POST", "/cluster/cameras/{camera}/release", release_camera, Rule.ADMIN)
    route("GET", "/ws/monitor", ws_monitor, Rule.WATCH)
    route("GET", "/ws/camera", ws_camera, Rule.ANY)  # which id: settled in the handler
    route("POST", "/tokens", mint_token, Rule.MINT)
    route("GET", "/tokens", list_tokens, Rule.ADMIN)
    route("GET", "/whoami", whoami, Rule.ANY)
    route("DELETE", "/tokens/{token_id}", revoke_token, Rule.ADMIN)
    app.router.add_static("/static/", config.web_root, show_index=False)
    rules[("GET", "/static")] = Rule.PUBLIC
    return app
