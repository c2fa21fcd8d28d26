"""What a camera peer's frames come from, as types: every source reads RGB frames; a live
one (a webcam) also says when it captured each, a recorded one (a video file) hands out
the frame of any instant of its own timeline.

Sources block (run them in a thread) and raise `SourceError` when they fail.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class SourceError(RuntimeError):
    pass


class FrameSource(Protocol):
    description: str

    def read(self) -> np.ndarray:
        """The next RGB frame (H, W, 3); raises SourceError when the source fails."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LiveSource(Protocol):
    """A camera: each frame comes with when it was captured."""

    description: str

    def read_captured(self) -> tuple[np.ndarray, float]:
        """The first frame captured from now on, and when (`time.monotonic()` seconds)."""
        ...

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...


@runtime_checkable
class RecordedSource(Protocol):
    """A recording with its own timeline: frame `index` is at `index / frame_rate` s, and
    the recording loops (index past its end wraps)."""

    description: str
    frame_rate: float

    def frame(self, index: int) -> np.ndarray: ...

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...
