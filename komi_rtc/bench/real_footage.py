"""Real footage nobody here made: the demo videos of Pose2Sim and Sports2D (BSD-3-Clause).

`scripts/setup.sh --test` downloads the two wheels (`pip download --no-deps`) into a cache
outside the repository; nothing of them is committed. The files used are unpacked from the
wheels on first use, so tests and benchmarks need no network.
- Pose2Sim 0.10.49 (David Pagnon et al.): `Demo_SinglePerson`, one real person in a lab
  filmed by 4 synchronised cameras (60 fps, 1088x1920 portrait), with the lab's Qualisys
  calibration `Calib.qca.txt`.
- Sports2D 0.8.34 (David Pagnon et al.): `Demo/demo.mp4`, two real people outdoors, 30 fps.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

POSE2SIM_WHEEL = "pose2sim-0.10.49-py3-none-any.whl"
SPORTS2D_WHEEL = "sports2d-0.8.34-py3-none-any.whl"
SETUP_HINT = "run `bash scripts/setup.sh --test` (it downloads the Pose2Sim and Sports2D wheels)"


class FootageMissing(RuntimeError):
    """The footage wheels are not in the cache; the message says how to fetch them."""


def footage_dir() -> Path:
    """The cache holding the wheels: `$KOMI_FOOTAGE_DIR` or `~/.cache/komi_rtc/footage`."""
    configured = os.environ.get("KOMI_FOOTAGE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "komi_rtc" / "footage"


@dataclass(frozen=True)
class LabStation:
    """Pose2Sim's single-person lab demo: 4 views of one instant per frame index."""

    videos: tuple[Path, ...]  # cam01..cam04, in order
    qualisys_calibration: Path  # Calib.qca.txt


def _unpack(wheel_name: str, members: list[str]) -> list[Path]:
    wheel = footage_dir() / wheel_name
    if not wheel.is_file():
        raise FootageMissing(f"real footage {wheel} is missing: {SETUP_HINT}")
    target = footage_dir() / "unpacked" / wheel_name.removesuffix(".whl")
    paths = [target / member for member in members]
    if not all(path.is_file() for path in paths):
        with zipfile.ZipFile(wheel) as archive:
            for member in members:
                archive.extract(member, target)
    return paths


def lab_station() -> LabStation:
    """Pose2Sim's 4 lab videos and Qualisys calibration, unpacked from the cached wheel."""
    demo = "Pose2Sim/Demo_SinglePerson"
    videos = [f"{demo}/videos/cam{index:02d}.mp4" for index in range(1, 5)]
    paths = _unpack(POSE2SIM_WHEEL, [*videos, f"{demo}/calibration/Calib.qca.txt"])
    return LabStation(videos=tuple(paths[:4]), qualisys_calibration=paths[4])


def two_people_outdoors() -> Path:
    """Sports2D's demo video: one person walks through while another moves on a box."""
    return _unpack(SPORTS2D_WHEEL, ["Sports2D/Demo/demo.mp4"])[0]
