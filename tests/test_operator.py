"""What the person running the server sees (issue 28): Ctrl-C in a terminal stops it cleanly,
and a bad option is one line and exit 2 before anything starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from auth import ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", GLOG_minloglevel="2")
    env.pop("KOMI_ADMIN_TOKEN", None)
    env.update(extra)
    return env


def _server(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the server command to its end (it is expected to refuse to start)."""
    command = [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1"]
    command += ["--port", str(_port()), "--state-dir", str(tmp_path / "state"), *args]
    return subprocess.run(
        command,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_ctrl_c_to_the_process_group_stops_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    port = _port()
    command = [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--state-dir", str(tmp_path / "state"), "--workers", "2"]
    server = subprocess.Popen(
        command,
        env=_env(KOMI_ADMIN_TOKEN=ADMIN_TOKEN),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # polling a starting server, deadline below
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "died" not in stderr, stderr  # no worker restarted while stopping
    assert sum("stopping" in line for line in stderr.splitlines()) == 1, stderr


@pytest.mark.parametrize(
    "db, words",
    [
        ("mysql://x/y", "not supported"),
        ("postgresql://komi:secret-pw@127.0.0.1:1/komi", "cannot open the history database"),
        ("not a url", "not a database URL"),
    ],
)
def test_a_bad_db_is_one_line_and_exit_2_before_any_worker_starts(
    tmp_path: Path, db: str, words: str
) -> None:
    done = _server(tmp_path, "--db", db, KOMI_ADMIN_TOKEN=ADMIN_TOKEN)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "secret-pw" not in done.stderr  # the password is never shown
    assert "pose worker" not in done.stderr


def test_a_bad_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _server(tmp_path, "--redis", "redis://127.0.0.1:1/0", KOMI_ADMIN_TOKEN=ADMIN_TOKEN)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "redis" in lines[0].lower(), done.stderr
    assert "pose worker" not in done.stderr


def test_an_admin_token_from_both_the_environment_and_a_file_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "admin"
    token_file.write_text("another-admin-token-0123456789\n")
    done = _server(tmp_path, "--admin-token-file", str(token_file), KOMI_ADMIN_TOKEN=ADMIN_TOKEN)
    assert done.returncode == 2
    assert "KOMI_ADMIN_TOKEN" in done.stderr and "--admin-token-file" in done.stderr
    assert ADMIN_TOKEN not in done.stderr and "another-admin-token" not in done.stderr
