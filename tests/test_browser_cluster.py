"""A browser camera page in a cluster of two real nodes (server processes, a real Redis):
served by one node, it lands on the other when that node dies, with no load balancer. The
page offers through the nodes its first answer listed; the live node accepts the dead
node's page origin (CORS) and no other."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from auth import AUTH_HEADERS
from browser import (  # noqa: F401 (fixtures, used by name)
    BROWSER_TESTS,
    browser_fixture,
    open_camera,
    person_y4m_fixture,
)
from cluster_nodes import Node, placement, until, wait_joined
from databases import redis_server

pytestmark = BROWSER_TESTS

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


async def test_a_camera_page_whose_node_dies_lands_on_a_live_node(two_nodes, browser):
    first, second = two_nodes["node_p1"], two_nodes["node_p2"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        # the live node lets the other node's pages call it, and no other page
        status, headers = await _preflight(http, second.url, first.url)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == first.url
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        status, headers = await _preflight(http, second.url, "http://evil.example")
        assert status == 403 and "Access-Control-Allow-Origin" not in headers

        context, page = await open_camera(browser, first.url, CAMERA)  # both idle: it stays
        try:
            assert await page.evaluate("window.komiCamera.server") == first.url
            assert (await placement(http, first))[CAMERA] == first.id
            results = await page.evaluate("window.komiCamera.results")
            first.process.send_signal(signal.SIGKILL)  # the node that served the page
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

            await until(on_second, 10, f"{CAMERA} listed on {second.id}")
        finally:
            await context.close()
