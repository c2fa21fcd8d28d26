"""Draws the camera app's icons (web/icons/, committed) from web/favicon.svg's figure: a
green stick person on the dark panel, as PNGs at 192 and 512 pixels (what Chromium's
installability check asks of a manifest) and a maskable 512 whose figure stays inside the
safe zone (the middle 80 %) whatever shape a phone's launcher cuts.

Run from the repository: `.venv/bin/python scripts/make_app_icons.py` (offline, OpenCV)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

BACKGROUND = (0x1A, 0x16, 0x14)  # BGR of favicon.svg's #14161a
FIGURE = (0x66, 0xFF, 0x00)  # BGR of #00ff66
SUPERSAMPLE = 4  # drawn large, then shrunk: smooth edges without an SVG renderer
OUT = Path(__file__).resolve().parent.parent / "web" / "icons"


def _rounded_square(size: int, radius: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.rectangle(mask, (radius, 0), (size - radius, size), 255, -1)
    cv2.rectangle(mask, (0, radius), (size, size - radius), 255, -1)
    for cx in (radius, size - radius):
        for cy in (radius, size - radius):
            cv2.circle(mask, (cx, cy), radius, 255, -1, cv2.LINE_AA)
    return mask


def draw(size: int, maskable: bool) -> np.ndarray:
    """The icon as BGRA. favicon.svg's 32-unit figure, scaled (to 60 % for maskable)."""
    big = size * SUPERSAMPLE
    image = np.zeros((big, big, 4), np.uint8)
    if maskable:
        image[:, :] = (*BACKGROUND, 255)  # full bleed: the launcher cuts its own shape
    else:
        mask = _rounded_square(big, big * 6 // 32)
        image[mask > 0] = (*BACKGROUND, 255)
    scale = big / 32 * (0.6 if maskable else 1.0)
    offset = (big - 32 * scale) / 2

    def at(x: float, y: float) -> tuple[int, int]:
        return int(offset + x * scale), int(offset + y * scale)

    width = max(1, int(2.5 * scale))
    color = (*FIGURE, 255)
    cv2.circle(image, at(16, 7), int(3 * scale), color, width, cv2.LINE_AA)
    for start, end in (((16, 10), (16, 20)), ((9, 14), (16, 12)), ((16, 12), (23, 14)),
                       ((16, 20), (11, 28)), ((16, 20), (21, 28))):  # fmt: skip
        cv2.line(image, at(*start), at(*end), color, width, cv2.LINE_AA)
        for point in (start, end):  # round caps, as stroke-linecap="round"
            cv2.circle(image, at(*point), width // 2, color, -1, cv2.LINE_AA)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for size in (192, 512):
        cv2.imwrite(str(OUT / f"camera-{size}.png"), draw(size, maskable=False))
    cv2.imwrite(str(OUT / "camera-maskable-512.png"), draw(512, maskable=True))


if __name__ == "__main__":
    main()
