"""Real headless Chromium, driven by Playwright, with a fake camera playing a Y4M file.

For the browser test modules (their `browser` fixture is in conftest.py: one Chromium for
the run, each test's pages closed after it): the marks, the video, and helpers that open
the pages with an access link (`?token=`, the admin token unless told)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import cv2
import numpy as np
import pytest
from auth import ADMIN_TOKEN
from contract_client import person_frame

CHROMIUM = "/usr/bin/chromium"

# every browser test module: pytestmark = BROWSER_TESTS
BROWSER_TESTS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Chromium is not installed (scripts/test.sh installs it)",
    ),
]


def write_person_y4m(path: Path, frames: int = 120, fps: int = 10) -> Path:
    """A Y4M video of the astronaut moving, for Chromium's fake camera."""
    width, height = 640, 480
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            rgb, _ = person_frame(index, width, height)
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def chromium_args(y4m: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
        "--autoplay-policy=no-user-gesture-required",
        "--ignore-certificate-errors",
    ]


def page_link(url: str, path: str, token: str | None = ADMIN_TOKEN, **params: str) -> str:
    """A page's address as a link carries it: its parameters, then `token` (None: no token)."""
    query = {**params, **({"token": token} if token is not None else {})}
    return f"{url}{path}?{urlencode(query)}" if query else f"{url}{path}"


async def open_camera(
    browser: Any,
    url: str,
    camera_id: str | None,
    token: str | None = ADMIN_TOKEN,
    **context_options: Any,
) -> Any:
    """A camera page streaming as `camera_id` (None: as the server names it, a bound
    camera link's own camera), once skeletons come back: (context, page)."""
    options = {"viewport": {"width": 480, "height": 900}, **context_options}
    context = await browser.new_context(**options)
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print("camera page:", m.text))
    params = {"autostart": "1"} | ({"camera_id": camera_id} if camera_id else {})
    await page.goto(page_link(url, "/camera", token, **params))
    await page.wait_for_function(
        "window.komiCamera && window.komiCamera.results >= 5 && window.komiCamera.lastPoses > 0",
        timeout=30000,
    )
    return context, page


async def open_monitor(
    browser: Any, url: str, token: str | None = ADMIN_TOKEN, **context_options: Any
) -> Any:
    """A monitor page at 1280 x 800: (context, page)."""
    options = {"viewport": {"width": 1280, "height": 800}, **context_options}
    context = await browser.new_context(**options)
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print("monitor page:", m.text))
    await page.goto(page_link(url, "/monitor", token))
    return context, page


async def tile_is_live(page: Any, camera_id: str) -> None:
    """Wait until the camera's tile plays video and draws skeletons."""
    await page.wait_for_function(
        """id => { const s = window.komiMonitor.tiles[id];
                   return s && s.messages >= 5 && s.videoTime > 1 && s.drawn >= 5; }""",
        arg=camera_id,
        timeout=30000,
    )


def skeleton_pixels(png: bytes) -> int:
    """Pixels of the overlay's skeleton green (#00ff66) in a screenshot."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
    return int(np.count_nonzero((g > 200) & (r < 90) & (b > 40) & (b < 160)))


def mean_brightness(png: bytes) -> float:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image.mean())


async def own_skeletons(page: Any, camera_id: str, frames: int = 20) -> dict[str, int]:
    """Wait (timeout 120 s) until the camera's tile has shown `frames` more frames with their
    own skeleton, and return the counts over that window (`matched`, `late`, `noPose`). A busy
    machine slows it down but cannot fail it; skeletons that came too late for their frame
    must stay a minority (the video hold adapts to the latency it sees)."""
    base = await page.evaluate("id => window.komiMonitor.tiles[id]", camera_id)
    await page.wait_for_function(
        "([id, wanted]) => window.komiMonitor.tiles[id].matched >= wanted",
        arg=[camera_id, base["matched"] + frames],
        timeout=120000,
    )
    stats = await page.evaluate("id => window.komiMonitor.tiles[id]", camera_id)
    delta = {key: stats[key] - base[key] for key in ("matched", "late", "noPose")}
    print(f"{camera_id}: own skeleton on {delta['matched']} frames, {delta['late']} too late, "
          f"{delta['noPose']} not analysed")  # fmt: skip
    assert delta["matched"] > delta["late"], f"most skeletons miss their frame: {delta}"
    return delta
