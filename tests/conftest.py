"""Shared fixtures: one pose worker pool for the whole run, a real server per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from auth import ADMIN_TOKEN

from komi_rtc.pose.worker_pool import PoseWorkerPool
from komi_rtc.server import create_app
from komi_rtc.server.config import ServerConfig

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "artifacts")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak run: give --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pose_pool() -> Iterator[PoseWorkerPool]:
    pool = PoseWorkerPool(workers=2)
    pool.start()
    yield pool
    pool.stop()


class RunningServer:
    def __init__(self, server: TestServer, app: Any) -> None:
        self.server = server
        self.app = app

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
def start_server(pose_pool: PoseWorkerPool, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start real servers (on real ports) with a given config; all stopped at the end."""

    async def start(ssl_context: Any = None, **overrides: Any) -> RunningServer:
        overrides.setdefault("admin_token", ADMIN_TOKEN)
        overrides.setdefault("state_dir", tmp_path_factory.mktemp("state"))
        config = ServerConfig(host="127.0.0.1", port=0, **overrides)
        app = create_app(config, pool=pose_pool)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=ssl_context)
        return RunningServer(server, app)

    return start


@pytest.fixture
async def server(start_server: Any) -> AsyncIterator[RunningServer]:
    running = await start_server()
    yield running
    await running.server.close()


class RestartableServer:
    """A real server on a fixed port that a test stops and starts again (reconnection)."""

    def __init__(self, pool: PoseWorkerPool, state_dir: Any) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._pool = pool
        self._state_dir = state_dir
        self._server: TestServer | None = None

    async def start(self) -> None:
        config = ServerConfig(
            host="127.0.0.1", port=self.port, admin_token=ADMIN_TOKEN, state_dir=self._state_dir
        )
        app = create_app(config, pool=self._pool)
        self._server = TestServer(app, host="127.0.0.1", port=self.port)
        await self._server.start_server()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None


@pytest.fixture
async def restartable_server(
    pose_pool: PoseWorkerPool, tmp_path: Any
) -> AsyncIterator[RestartableServer]:
    server = RestartableServer(pose_pool, tmp_path / "state")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def artifacts_dir() -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll a condition until it holds; fails the test with a timeout otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL for the run; each test that wants a clean slate makes its own
    database or uses distinct ids."""
    from databases import postgres_server

    with postgres_server() as url:
        yield url
