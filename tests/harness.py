"""What the tests share to run real servers: a free port, waiting for a condition with a
deadline, and the server started as its own process the way a person starts it.

Fixtures built on these live in conftest.py (`server_process`, `start_server`); test modules
import the plain helpers from here.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from auth import ADMIN_TOKEN

T = TypeVar("T")

POLL_INTERVAL_S = 0.05  # between two looks at a condition: short next to any timeout here


def free_port() -> int:
    """A TCP port free on loopback now (whoever asked binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "condition",
    interval: float = POLL_INTERVAL_S,
) -> T:
    """Poll `predicate` (a function or a coroutine function) until it returns something
    truthy, and return that. AssertionError naming `what` (or what `what()` says: a log's
    tail, the last answer) once `timeout` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"{described}: not met within {timeout:g} s")
        await asyncio.sleep(interval)  # polling, with the deadline above


def wait_for_blocking(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "condition",
    interval: float = POLL_INTERVAL_S,
) -> T:
    """`wait_for` where no event loop runs (fixtures, plain tests): blocks this thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"{described}: not met within {timeout:g} s")
        time.sleep(interval)  # polling, with the deadline above


def http_status(url: str, timeout: float = 5.0) -> int:
    """A blocking GET's status; 0 when nothing answers (a server not listening yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


class ServerProcess:
    """The server as its own process on a loopback port: `python -m komi_rtc.server` (or
    `command`, an installed console script), its output in `log` (stderr too, unless
    `stderr_log` is given), with the tests' admin token in `KOMI_ADMIN_TOKEN`. `stop()`
    sends SIGINT, as Ctrl-C does."""

    def __init__(
        self,
        args: Sequence[str],
        log: Path,
        *,
        command: Sequence[str] = (sys.executable, "-m", "komi_rtc.server"),
        port: int | None = None,
        admin_token: str | None = ADMIN_TOKEN,
        cwd: Path | None = None,
        stderr_log: Path | None = None,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.stderr_log = stderr_log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KOMI_ADMIN_TOKEN", None)
        if admin_token is not None:  # None: the server makes its own, in its state dir
            env["KOMI_ADMIN_TOKEN"] = admin_token
        with ExitStack() as files:
            out = files.enter_context(open(log, "ab"))  # appended: a restart keeps one log
            err = files.enter_context(open(stderr_log, "ab")) if stderr_log else None
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port), *args],
                stdout=out,
                stderr=err or subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self, tail: int | None = None) -> str:
        """The server's log (its stderr log when it has one of its own), or its last `tail`
        characters."""
        path = self.stderr_log or self.log
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    def wait_until(
        self, predicate: Callable[[], T], timeout: float = 90.0, what: str = "condition"
    ) -> T:
        """`wait_for_blocking` on this server: fails at once, with the log, if it exits."""

        def check() -> T:
            code = self.process.poll()
            assert code is None, f"the server exited with {code} ({what}):\n{self.log_text()}"
            return predicate()

        return wait_for_blocking(check, timeout, lambda: f"{what}\n{self.log_text(6000)}", 0.1)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Until /healthz answers 200."""

        def healthy() -> bool:
            return http_status(f"{self.url}/healthz", timeout=2) == 200

        self.wait_until(healthy, timeout, "/healthz answering 200")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT, then SIGKILL if it has not exited within `timeout` s; its exit code."""
        if self.alive:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush (a crash, a power cut)."""
        self.process.kill()
        self.process.wait()


MULTICAST = {"iptables": "224.0.0.0/4", "ip6tables": "ff00::/8"}


class MulticastDrop:
    """iptables (and ip6tables) OUTPUT rules dropping multicast that would leave by any
    interface but loopback, while a test runs: Firefox, Chromium and aioice announce and
    look up mDNS `.local` names with multicast, which must not reach the network the tests
    run on. `dropped()` counts the IPv4 packets it stopped (a test can check a lookup was
    made). Not root: the test is skipped, saying why."""

    def __init__(self) -> None:
        self._comment = f"komi-test-no-multicast-{os.getpid()}"

    def _rule(self, command: str) -> list[str]:
        return [
            "OUTPUT", "!", "-o", "lo", "-d", MULTICAST[command],
            "-m", "comment", "--comment", self._comment, "-j", "DROP",
        ]  # fmt: skip

    def __enter__(self) -> MulticastDrop:
        if os.geteuid() != 0:
            import pytest

            # without the rule the lookups would reach the network: not run at all
            pytest.skip("dropping multicast needs root (iptables); CI runs the tests as root")
        for command in MULTICAST:
            _iptables(command, "-I", *self._rule(command))
        return self

    def __exit__(self, *exc: object) -> None:
        for command in MULTICAST:
            _iptables(command, "-D", *self._rule(command))

    def dropped(self) -> int:
        """IPv4 packets the rule has dropped so far."""
        listing = _iptables("iptables", "-L", "OUTPUT", "-v", "-n", "-x")
        for line in listing.splitlines():
            if self._comment in line:
                return int(line.split()[0])
        raise AssertionError(f"the multicast rule is gone:\n{listing}")


@contextmanager
def multicast_dropped_if_root() -> Iterator[None]:
    """MulticastDrop for a browser that every browser test shares: as root (CI) it is
    dropped; otherwise the run goes on, saying that it could not be."""
    if os.geteuid() != 0:
        print("browser tests not run as root: their mDNS multicast is not dropped")
        yield
        return
    with MulticastDrop():
        yield


def _iptables(command: str, *args: str) -> str:
    """Run iptables or ip6tables (-w: wait for the lock another test holds); its output.
    FileNotFoundError when it is not installed (scripts/setup.sh --test installs it)."""
    done = subprocess.run([command, "-w", "10", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{command} {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def xvfb() -> Iterator[str]:
    """A virtual X display for the run of the block: its name (":N", a free number Xvfb
    chose itself)."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [
            "/usr/bin/Xvfb",
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            "1280x900x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as chosen:
            number = chosen.readline().strip()  # written once the display accepts clients
        assert number, f"Xvfb did not start (exit {process.poll()})"
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(10)
