"""Real cluster nodes (server processes) for the tests: start, stop, poll, read placement."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from auth import ADMIN_TOKEN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Node:
    """One server process of the cluster, its log in a file."""

    def __init__(self, node_id: str, redis_url: str, db_url: str, workdir: Path) -> None:
        self.id = node_id
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{node_id}.log"
        env = dict(os.environ, KOMI_ADMIN_TOKEN=ADMIN_TOKEN, PYTHONUNBUFFERED="1")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "komi_rtc.server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    "--redis",
                    redis_url,
                    "--public-url",
                    self.url,
                    "--node-id",
                    node_id,
                    "--db",
                    db_url,
                    "--state-dir",
                    str(workdir / node_id),
                    "--drain-timeout",
                    "20",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster:
    def __init__(self, nodes: dict[str, Node], redis_url: str, db_url: str) -> None:
        self.nodes = nodes
        self.redis_url = redis_url
        self.db_url = db_url

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.id}\n" + n.log.read_text(errors="replace")[-6000:] for n in self.nodes.values()
        )


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


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll an async condition until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.2)


async def placed(
    http: aiohttp.ClientSession, node: Node, *camera_ids: str, timeout: float = 10
) -> dict[str, str]:
    """camera -> node once `node` lists every one of `camera_ids` (it hears of another
    node's new camera within a heartbeat)."""

    async def listed() -> dict[str, str] | None:
        where = await placement(http, node)
        return where if set(camera_ids) <= set(where) else None

    result: dict[str, str] = await until(listed, timeout, f"{node.id} listing {camera_ids}")
    return result


async def placement(http: aiohttp.ClientSession, node: Node) -> dict[str, str]:
    """camera -> node, as `node` sees the cluster."""
    async with http.get(f"{node.url}/cluster") as response:
        assert response.status == 200
        body = await response.json()
    return {camera: n["id"] for n in body["nodes"] for camera in n["cameras"]}


def wait_joined(nodes: dict[str, Node], timeout: float = 120) -> None:
    """Block until every node is up and sees all the others (each beats once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        for node in nodes.values():
            assert node.alive, f"{node.id} exited at start:\n" + node.log.read_text()
        try:
            seen = [get_json(f"{n.url}/cluster") for n in nodes.values()]
        except OSError:
            seen = []
        if seen and all(s == 200 and len(b["nodes"]) == len(nodes) for s, b in seen):
            return
        logs = "\n".join(f"--- {n.id}\n" + n.log.read_text()[-3000:] for n in nodes.values())
        assert time.monotonic() < deadline, f"cluster not up:\n{logs}"
        time.sleep(0.2)  # polling starting processes (no event loop in a fixture)
