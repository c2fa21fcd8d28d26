"""Shared fixtures: one pose worker pool, one Chromium and one PostgreSQL for the whole run
(each started when a test first needs it); real servers in-process (`server`,
`start_server`, `restartable_server`) or as their own processes (`server_process`), each
stopped after its test. Plain helpers are in harness.py, browser helpers in browser.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from auth import ADMIN_TOKEN
from harness import ServerProcess, free_port, multicast_dropped_if_root

from komi_rtc.pose.worker_pool import PoseWorkerPool
from komi_rtc.server import create_app
from komi_rtc.server.config import ServerConfig

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "artifacts")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long soak tests")


# modules whose tests start browsers, databases, wheels or benchmarks take most of the run:
# they go first, so that two processes (scripts/test.sh runs -n 2 --dist loadfile) finish
# together instead of one waiting for the other's last long module
_LONG_MARKERS = ("browser", "databases", "wheel", "bench")


def _long_modules_first(items: list[pytest.Item]) -> None:
    long_modules = {
        item.nodeid.split("::")[0]
        for item in items
        if any(marker in item.keywords for marker in _LONG_MARKERS)
    }
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in long_modules)  # stable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _long_modules_first(items)
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
async def start_server(
    pose_pool: PoseWorkerPool, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    """Start real servers (on real ports: any free one unless `port` is given) with a given
    config; each closed at the end (its app's shutdown and cleanup run), unless the test
    closed it already."""
    started: list[RunningServer] = []

    async def start(ssl_context: Any = None, port: int = 0, **overrides: Any) -> RunningServer:
        overrides.setdefault("admin_token", ADMIN_TOKEN)
        overrides.setdefault("state_dir", tmp_path_factory.mktemp("state"))
        config = ServerConfig(host="127.0.0.1", port=port, **overrides)
        app = create_app(config, pool=pose_pool)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server(ssl=ssl_context)
        started.append(RunningServer(server, app))
        return started[-1]

    yield start
    for running in reversed(started):
        await running.server.close()  # idempotent: nothing happens for one closed already


@pytest.fixture
async def server(start_server: Any) -> RunningServer:
    """A real server with the default config, closed at the end by `start_server`."""
    running: RunningServer = await start_server()
    return running


class RestartableServer:
    """A real server on a fixed port that a test stops and starts again (reconnection)."""

    def __init__(self, pool: PoseWorkerPool, state_dir: Any) -> None:
        self.port = free_port()
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


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start the server as its own process, as a person does: `server_process(*args)` with
    the command line's options after --host/--port, once /healthz answers (`ready=False`:
    right away). Its log is `tmp_path/server.log` unless `log` is given; all are stopped
    with SIGINT at the end. Other keywords go to `ServerProcess`."""
    started: list[ServerProcess] = []

    def start(
        *args: str, ready: bool = True, log: Path | None = None, **options: Any
    ) -> ServerProcess:
        process = ServerProcess(args, log or tmp_path / "server.log", **options)
        started.append(process)
        if ready:
            process.wait_healthy()
        return process

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture(scope="session")
def person_y4m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The moving person as a Y4M video, for Chromium's fake camera."""
    from browser import write_person_y4m

    return write_person_y4m(tmp_path_factory.mktemp("video") / "person.y4m")


@pytest.fixture(scope="session")
async def chromium(person_y4m: Path) -> AsyncIterator[Any]:
    """Headless Chromium whose fake camera plays the moving person: one for the run
    (starting Playwright and Chromium took 1-4 s a test)."""
    from browser import CHROMIUM, chromium_args
    from playwright.async_api import async_playwright

    with multicast_dropped_if_root():  # its monitor pages announce mDNS names
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(person_y4m)
            )
            yield browser
            await browser.close()


@pytest.fixture
async def browser(chromium: Any) -> AsyncIterator[Any]:
    """The run's Chromium, for one test: the pages it leaves open (a failed test's camera
    page still streaming) are closed after it, so the next test starts from none."""
    yield chromium
    for context in chromium.contexts:
        await context.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL for the run; each test that wants a clean slate makes its own
    database or uses distinct ids."""
    from databases import postgres_server

    with postgres_server() as url:
        yield url
