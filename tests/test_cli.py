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
