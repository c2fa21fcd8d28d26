"""The command lines a newcomer meets first: clear errors, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_server_on_a_busy_port_says_so_and_how_to_fix_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"port {port} is already in use" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_or_unreachable_redis_says_so_without_a_traceback(tmp_path):
    """`--redis`: a Sentinel URL without the master's name, and Sentinels nobody runs."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = closed.getsockname()[1]  # nothing listens there once closed
    for url, said in (
        (f"redis+sentinel://127.0.0.1:{nobody}", "name the master's service"),
        (f"redis+sentinel://:secret@127.0.0.1:{nobody}/komi", "a master named 'komi'"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1", "--port", "0"]
            + ["--redis", url, "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0, done.stdout
        assert said in done.stderr, done.stderr
        assert "secret" not in done.stderr + done.stdout  # the password is never shown
        assert "Traceback" not in done.stderr


def test_sentinel_urls_name_the_sentinels_the_service_and_the_db():
    import pytest

    from komi_rtc.server.cluster import SentinelAddress, parse_sentinel_url

    assert parse_sentinel_url("redis://10.0.0.5:6379/0") is None
    assert parse_sentinel_url(
        "redis+sentinel://:p%40ss@10.0.0.11:26379,10.0.0.12:26380/komi/2"
    ) == SentinelAddress([("10.0.0.11", 26379), ("10.0.0.12", 26380)], "komi", 2, "p@ss")
    for bad in ("redis+sentinel://10.0.0.11/komi", "redis+sentinel://10.0.0.11:26379/komi/x"):
        with pytest.raises(ValueError):
            parse_sentinel_url(bad)


def test_the_readme_layout_picture_matches_the_package():
    """Every subpackage is in the README's picture, and every module it names exists."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    picture = readme[readme.index("```\nkomi_rtc/\n") : readme.index("\nweb/ ")]
    packages = {p.parent.name for p in (root / "komi_rtc").glob("*/__init__.py")}
    pictured = set(re.findall(r"^  (\w+)/ ", picture, re.MULTILINE))
    assert packages - {"data"} <= pictured, packages - pictured
    current = None
    for line in picture.splitlines():
        heading = re.match(r"^  (\w+)/ ", line)
        current = heading.group(1) if heading else current
        for module in re.findall(r"\b(\w+)\.py\b", line):
            assert (root / "komi_rtc" / str(current) / f"{module}.py").exists(), (current, module)
