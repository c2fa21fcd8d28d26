"""Real headless Chromium, driven by Playwright, with a fake camera playing a Y4M file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from contract_client import person_frame

CHROMIUM = "/usr/bin/chromium"


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


def skeleton_pixels(png: bytes) -> int:
    """Pixels of the overlay's skeleton green (#00ff66) in a screenshot."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
    return int(np.count_nonzero((g > 200) & (r < 90) & (b > 40) & (b < 160)))


def mean_brightness(png: bytes) -> float:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image.mean())
