"""Real cluster nodes (server processes) for the tests: start, stop, poll, read placement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from auth import ADMIN_TOKEN
from harness import ServerProcess, free_port, wait_for, wait_for_blocking


class Node(ServerProcess):
    """One server process of the cluster, its log in `workdir/<node_id>.log`. Started, not
    yet joined: `wait_joined` waits for that."""

    def __init__(self, node_id: str, redis_url: str, db_url: str, workdir: Path) -> None:
        self.id = node_id
        port = free_port()
        super().__init__(
            [
                *("--workers", "1", "--redis", redis_url),
                *("--public-url", f"http://127.0.0.1:{port}", "--node-id", node_id),
                *("--db", db_url, "--state-dir", str(workdir / node_id)),
                *("--drain-timeout", "20"),
            ],
            workdir / f"{node_id}.log",
            port=port,
        )

    def stop(self, timeout: float = 20.0) -> int:
        return super().stop(timeout)


class Cluster:
    def __init__(self, nodes: dict[str, Node], redis_url: str, db_url: str) -> None:
        self.nodes = nodes
        self.redis_url = redis_url
        self.db_url = db_url

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def logs(self) -> str:
        return "\n".join(f"--- {n.id}\n" + n.log_text(6000) for n in self.nodes.values())


def get_json(url: str, token: str = ADMIN_TOKEN) -> tuple[int, Any]:
    """A blocking GET for the fixture (no event loop there)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


async def placed(
    http: aiohttp.ClientSession, node: Node, *camera_ids: str, timeout: float = 10
) -> dict[str, str]:
    """camera -> node once `node` lists every one of `camera_ids` (it hears of another
    node's new camera within a heartbeat)."""

    async def listed() -> dict[str, str] | None:
        where = await placement(http, node)
        return where if set(camera_ids) <= set(where) else None

    result: dict[str, str] = await wait_for(listed, timeout, f"{node.id} listing {camera_ids}")
    return result


async def placement(http: aiohttp.ClientSession, node: Node) -> dict[str, str]:
    """camera -> node, as `node` sees the cluster."""
    async with http.get(f"{node.url}/cluster") as response:
        assert response.status == 200
        body = await response.json()
    return {camera: n["id"] for n in body["nodes"] for camera in n["cameras"]}


def wait_joined(nodes: dict[str, Node], timeout: float = 120) -> None:
    """Block until every node is up and sees all the others (each beats once a second)."""

    def joined() -> bool:
        for node in nodes.values():
            assert node.alive, f"{node.id} exited at start:\n" + node.log_text()
        try:
            seen = [get_json(f"{n.url}/cluster") for n in nodes.values()]
        except OSError:
            return False
        return all(s == 200 and len(b["nodes"]) == len(nodes) for s, b in seen)

    def logs() -> str:
        return "cluster up\n" + "\n".join(f"--- {n.id}\n{n.log_text(3000)}" for n in nodes.values())

    wait_for_blocking(joined, timeout, logs, interval=0.2)
