"""Browser pages in a cluster of two real nodes (server processes, a real Redis), with no
load balancer: a camera page and a monitor page served by one node go on through the other
when that node dies. The pages know the nodes from an offer's answer (`nodes`) or GET
/cluster; the live node accepts the dead node's page origin (CORS) and no other."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from auth import AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    open_camera,
    open_monitor,
    tile_is_live,
)
from cluster_nodes import Node, placement, wait_joined
from databases import redis_server
from harness import wait_for

pytestmark = [*BROWSER_TESTS, pytest.mark.databases]  # a Redis for the nodes

CAMERA = "cam_page_failover"


@pytest.fixture(name="two_nodes")
def two_nodes_fixture(tmp_path: Path) -> Iterator[dict[str, Node]]:
    with redis_server() as redis_url:
        nodes: dict[str, Node] = {}
        try:
            for node_id in ("node_p1", "node_p2"):
                db = f"sqlite:///{tmp_path / node_id}.sqlite3"
                nodes[node_id] = Node(node_id, redis_url, db, tmp_path)
            wait_joined(nodes)
            yield nodes
        finally:
            for node in nodes.values():
                node.stop()


async def _preflight(http: aiohttp.ClientSession, url: str, origin: str) -> Any:
    async with http.options(
        f"{url}/offer",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    ) as response:
        return response.status, dict(response.headers)


async def test_pages_whose_node_dies_go_on_through_a_live_node(two_nodes, browser):
    first, second = two_nodes["node_p1"], two_nodes["node_p2"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        # the live node lets the other node's pages call it, and no other page
        status, headers = await _preflight(http, second.url, first.url)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == first.url
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        status, headers = await _preflight(http, second.url, "http://evil.example")
        assert status == 403 and "Access-Control-Allow-Origin" not in headers

        contexts = []
        try:
            context, page = await open_camera(browser, first.url, CAMERA)  # both idle: stays
            contexts.append(context)
            monitor_context, monitor = await open_monitor(browser, first.url)
            contexts.append(monitor_context)
            await tile_is_live(monitor, CAMERA)
            assert await page.evaluate("window.komiCamera.server") == first.url
            assert (await placement(http, first))[CAMERA] == first.id
            known = await monitor.evaluate(
                "import('/static/nodes.js').then((m) => m.knownServers())"
            )
            assert known == [first.url, second.url], known  # from GET /cluster
            results = await page.evaluate("window.komiCamera.results")
            await monitor.evaluate(f"window.komiMonitor.tiles[{CAMERA!r}].before = true")

            first.process.send_signal(signal.SIGKILL)  # the node that served both pages
            first.process.wait()
            await page.wait_for_function(
                """([n, url]) => window.komiCamera.state === 'connected'
                   && window.komiCamera.server === url && window.komiCamera.results > n + 5
                   && window.komiCamera.lastPoses > 0""",
                arg=[results, second.url],
                timeout=60000,
            )

            async def on_second() -> bool:
                return (await placement(http, second)).get(CAMERA) == second.id

            await wait_for(on_second, 10, f"{CAMERA} listed on {second.id}")
            # the monitor lists the cameras through the live node and watches the camera
            # there: a new tile, playing and drawn
            await monitor.wait_for_function(
                """id => { const s = window.komiMonitor.tiles[id];
                           return s && !s.before && !s.offline && s.messages >= 5
                             && s.videoTime > 1 && s.drawn >= 5; }""",
                arg=CAMERA,
                timeout=60000,
            )
            known = await monitor.evaluate(
                "import('/static/nodes.js').then((m) => m.knownServers())"
            )
            assert known[0] == second.url, known
        finally:
            for context in reversed(contexts):
                await context.close()
