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


def test_options_come_from_the_command_line_then_the_environment_then_the_file(
    tmp_path: Path,
) -> None:
    from komi_rtc.server.effective_config import parse_args

    config_file = tmp_path / "komi.toml"
    config_file.write_text(
        "max-cameras = 5\nmax_monitors_per_camera = 3\nport = 8100\nhttps = true\n"
        'allow-origin = ["https://gym.example"]\n'
    )
    environ = {"KOMI_PORT": "8200", "KOMI_MAX_CAMERAS": "6", "KOMI_CONFIG": str(config_file)}
    config = parse_args(["--port", "8300"], environ)
    assert config.port == 8300  # the command line wins
    assert config.max_cameras == 6  # then the environment
    assert config.max_monitors_per_camera == 3 and config.https  # then the file
    assert "https://gym.example" in config.allow_origins
    assert config.max_body_bytes == 1024 * 1024  # else the default
    assert parse_args([], {"KOMI_OPEN": "yes"}).open_access
    assert not parse_args([], {"KOMI_OPEN": "0"}).open_access


def test_a_bad_option_value_from_a_file_or_the_environment_is_one_line(tmp_path: Path) -> None:
    config_file = tmp_path / "komi.toml"
    config_file.write_text("max-camras = 5\n")
    done = _server(tmp_path, "--config", str(config_file), KOMI_ADMIN_TOKEN=ADMIN_TOKEN)
    assert done.returncode == 2 and "max-camras" in done.stderr, done.stderr
    done = _server(tmp_path, KOMI_ADMIN_TOKEN=ADMIN_TOKEN, KOMI_MAX_CAMERAS="many")
    assert done.returncode == 2 and "KOMI_MAX_CAMERAS" in done.stderr, done.stderr


def test_komi_rtc_config_prints_each_value_and_where_it_came_from_secrets_hidden(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "komi_rtc.server", "config", "--db"]
    command += ["postgresql://komi:secret-pw@db.example/komi", "--port", "8123"]
    done = subprocess.run(
        command,
        env=_env(KOMI_MAX_CAMERAS="9", KOMI_ADMIN_TOKEN=ADMIN_TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "8123" in lines["port"] and "command line" in lines["port"]
    assert "9" in lines["max-cameras"] and "KOMI_MAX_CAMERAS" in lines["max-cameras"]
    assert "default" in lines["max-body-bytes"]
    assert "secret-pw" not in done.stdout and "***" in lines["db"]
    assert ADMIN_TOKEN not in done.stdout


def test_every_command_says_its_version() -> None:
    from komi_rtc import __version__

    for module in ("komi_rtc.server", "komi_rtc.camera", "komi_rtc.analysis"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--version"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and __version__ in done.stdout, (module, done)


def test_komi_rtc_links_prints_fresh_links_the_running_server_lists(tmp_path: Path) -> None:
    import json

    port = _port()
    options = ["--host", "127.0.0.1", "--port", str(port), "--state-dir", str(tmp_path / "s")]
    server = subprocess.Popen(
        [sys.executable, "-m", "komi_rtc.server", *options, "--workers", "1"],
        env=_env(KOMI_ADMIN_TOKEN=ADMIN_TOKEN),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # polling a starting server, deadline below
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        done = subprocess.run(
            [sys.executable, "-m", "komi_rtc.server", "links", *options],
            env=_env(KOMI_ADMIN_TOKEN=ADMIN_TOKEN),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        monitor = done.stdout.split("/monitor?token=")[1].split()[0]
        camera = done.stdout.split("/camera?token=")[1].split()[0]
        for token, role in ((monitor, "monitor"), (camera, "camera")):
            request = urllib.request.Request(
                f"{base}/whoami", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert json.loads(response.read())["role"] == role
        request = urllib.request.Request(
            f"{base}/tokens", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            listed = json.loads(response.read())["tokens"]
        # the start banner's two links, and these two
        assert sorted(t["role"] for t in listed) == ["camera", "camera", "monitor", "monitor"]
        assert monitor not in json.dumps(listed)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # with no server there, one line and exit 2
    done = subprocess.run(
        [sys.executable, "-m", "komi_rtc.server", "links", *options],
        env=_env(KOMI_ADMIN_TOKEN=ADMIN_TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "no server answers" in done.stderr, done.stderr
