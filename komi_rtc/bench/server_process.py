"""What every benchmark that runs the real server as its own process shares: a free port,
waiting for the server to answer, and the latency figures they all print."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import numpy as np

TIMELY_MS = 500.0  # a result later than this is no use to a person exercising


def free_port() -> int:
    """A TCP port free on loopback now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Until `url` answers 200; RuntimeError when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling a starting server, deadline above
    raise RuntimeError("server did not start")


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of `values` (milliseconds, rounded to 0.1); None when empty."""
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    array = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(array, q)), 1) for q in (50, 95, 99)}
