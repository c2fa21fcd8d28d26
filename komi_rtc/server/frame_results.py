"""What a camera session makes of one analysed frame: its `frame_processed` message, and
what the session tells the pose worker next (the frame's capture time, the analysis's joint
angle for keyframes)."""

from __future__ import annotations

import time
from typing import Any

from ..media.newest_frame import ReceivedFrame
from ..pose.worker_pool import PoseResult
from ..protocol.messages import FrameProcessed, FrameTiming, PoseTracking
from .analysis_rate import AnalysisRate


def frame_time_ms(item: ReceivedFrame) -> int:
    """When the frame was captured, in milliseconds of the camera's own clock as far as it
    says (the legacy protocol's `timestamp`), else of its pts: the model's smoothing then
    follows the real intervals, also when frames are skipped. Per camera only; the worker
    makes the times strictly increasing."""
    if item.camera_time is not None:
        return int(item.camera_time * 1000)
    return item.pts // 90


def movement_signal(analysis: dict[str, Any] | None) -> float | None:
    """The joint angle the analysis follows (its first), read from the snapshot it sends
    anyway: the pose worker runs the model near a repetition's turning point."""
    if not analysis or analysis.get("phase") not in ("rest", "working"):
        return None
    angles = analysis.get("angles")
    if not isinstance(angles, dict) or not angles:
        return None
    value = next(iter(angles.values()))
    return float(value) if isinstance(value, (int, float)) else None


def frame_processed(
    camera_id: str,
    kind: str,
    item: ReceivedFrame,
    result: PoseResult,
    pose_json: list[dict[str, Any]],
    analysis: dict[str, Any] | None,
    rate: AnalysisRate,
    now: float,
) -> FrameProcessed:
    """The message for one analysed frame; `kind` "websocket" cameras (the original KOMI
    protocol) get their `client_id` back."""
    width, height = item.frame.width, item.frame.height
    return FrameProcessed(
        camera_id=camera_id,
        frame_pts=item.pts,
        timestamp=now,
        width=width,
        height=height,
        poses=pose_json,
        timing=FrameTiming(
            receive=item.received_wall,
            inference_ms=result.inference_ms,
            server_ms=(time.monotonic() - item.received_monotonic) * 1000,
            received_fps=rate.received_fps,
            analysed_fps=rate.analysed_fps,
            overloaded=rate.overloaded,
        ),
        analysis=analysis,
        client_id=camera_id if kind == "websocket" else None,
        tracking=PoseTracking(
            "flow" if result.tracked else "model", result.since_model, result.person_id
        )
        if result.poses
        else None,
    )
