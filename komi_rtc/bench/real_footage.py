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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..media.video_file import VideoFileSource

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
    frames: int = 100
    # frame i of a view shows the instant of the others' frame i - offset: cam03's joints
    # reproject best through the lab calibration and the other views 4 frames later (13.3
    # against 15.5 px median; the others within a frame), so the recording is not quite in
    # sync (Pose2Sim has a synchronisation step for this)
    frame_offsets: dict[str, int] = field(default_factory=lambda: {"cam03": 4})


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


class RecordingInMemory:
    """A recording decoded once, at the size streamed: a camera peer replaying it costs only
    its encoding. Replaying the lab's 60 fps files from disk decodes every frame of their
    timeline (grabbing forward decodes): 240 decodes a second of 1088x1920 for 4 views,
    most of this 2-core machine, which then starved the server being measured."""

    def __init__(
        self, path: Path, width: int, height: int, first: int = 0, count: int | None = None
    ) -> None:
        """Frames `first` to `first + count` (all by default), replayed as frames 0, 1..."""
        source = VideoFileSource(str(path), width, height, 30.0)
        try:
            self.frame_rate = source.frame_rate
            self._frames: list[np.ndarray] = []
            while True:
                index = len(self._frames)
                frame = source.frame(index)
                if index > 0 and source.frame_count is not None:
                    break  # wrapped around: every frame is in
                self._frames.append(frame)
        finally:
            source.close()
        end = len(self._frames) if count is None else first + count
        self._frames = self._frames[first:end]
        self.description = f"file {path} (in memory, {len(self._frames)} frames)"
        self._next = 0

    def frame(self, index: int) -> np.ndarray:
        return self._frames[index % len(self._frames)]

    def read(self) -> np.ndarray:
        frame = self.frame(self._next)
        self._next += 1
        return frame

    def close(self) -> None:
        self._frames.clear()
