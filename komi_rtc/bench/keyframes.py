"""Keypoints with keyframes and optical flow against the model on every frame, in one process:
the same frames (rendered, and the real Pose2Sim and Sports2D videos) go through each path,
and each path's keypoints are compared with every-frame BlazePose full (the legacy API, wave
2's path) and, on rendered footage, with the truth. CPU time per frame is measured with the
process's own clock (`time.process_time`), so other load on the machine does not count.
`--worker` measures instead the pose worker process as the server drives it (shared memory,
pipe, tracker; yuv420p rendered squats at 15 fps, the analysis's angle a frame late), its
CPU from /proc, per frame: the worker's share of the load benchmark's CPU per frame.

    python -m komi_rtc.bench.keyframes [--frames 60] [--real] [--worker]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil

from ..analysis.live import LiveAnalysis
from ..pose.keyframes import KeyframeTracker
from ..pose.model_choice import PoseSettings, create_estimator
from ..server.frame_results import movement_signal


@dataclass(frozen=True)
class Clip:
    name: str
    frames: list[np.ndarray]  # RGB
    fps: float
    truth: list[np.ndarray] | None = None  # (33, 2+) pixels per frame, when rendered
    exercise: str | None = None  # analysed as the server does (turning points call the model)


@dataclass(frozen=True)
class PathRun:
    """One way of finding poses over one clip: keypoints per frame (None: nobody found)."""

    label: str
    keypoints: list[np.ndarray | None]
    cpu_ms_per_frame: float
    model_share: float  # of frames on which the model ran


PATHS: dict[str, PoseSettings] = {
    "every frame, full, legacy API (wave 2)": PoseSettings(legacy=True, max_keyframe_interval=1),
    "every frame, full, Tasks": PoseSettings(model="full", max_keyframe_interval=1),
    "keyframes + flow, full": PoseSettings(model="full", max_keyframe_interval=3),
    "keyframes + flow, lite": PoseSettings(model="lite", max_keyframe_interval=3),
}
REFERENCE = "every frame, full, legacy API (wave 2)"


def rendered_clip(exercise: str, view: str, frames: int, fps: float = 15.0) -> Clip:
    from ..synthetic.exercise_video import ExercisingPersonSource

    source = ExercisingPersonSource(640, 480, fps, exercise=exercise, view=view)
    images = [source.read() for _ in range(frames)]
    truth = [source.truth(i).keypoints for i in range(frames)]
    return Clip(f"rendered {exercise}, {view}", images, fps, truth, exercise)


def video_clip(name: str, path: str, frames: int, step: int, scale: float) -> Clip:
    """Every `step`-th frame of a video, scaled (the real videos are 60 or 30 fps)."""
    import cv2

    capture = cv2.VideoCapture(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    images: list[np.ndarray] = []
    index = 0
    while len(images) < frames:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % step == 0:
            if scale != 1.0:
                bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                bgr = bgr[: bgr.shape[0] // 2 * 2, : bgr.shape[1] // 2 * 2]
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        index += 1
    capture.release()
    return Clip(name, images, fps / step)


def run_path(label: str, settings: PoseSettings, clip: Clip) -> PathRun:
    """Frames go in as the worker gets them from WebRTC: yuv420p, the Y plane for the flow."""
    import cv2

    tracker = KeyframeTracker(create_estimator(settings), settings.max_keyframe_interval)
    analysis = LiveAnalysis("bench")
    analysis.set_exercise(clip.exercise)
    movement: float | None = None
    keypoints: list[np.ndarray | None] = []
    model_frames = 0
    cpu = 0.0
    try:
        for index, rgb in enumerate(clip.frames):
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
            height = rgb.shape[0]
            started = time.process_time()
            found = tracker.process(
                yuv[:height],
                functools.partial(cv2.cvtColor, yuv, cv2.COLOR_YUV2RGB_I420),
                int(index * 1000 / clip.fps),
                movement,
            )
            tracker.after_result()  # as the worker does once the result is sent
            cpu += time.process_time() - started
            people = [pose.to_json() for pose in found.poses]
            height, width = rgb.shape[:2]
            snapshot, _ = analysis.analyse(people, width, height, index / clip.fps)
            movement = movement_signal(snapshot)  # a frame late, as in the server
            model_frames += not found.tracked
            keypoints.append(found.poses[0].keypoints.copy() if found.poses else None)
    finally:
        tracker.close()
    count = max(len(clip.frames), 1)
    return PathRun(label, keypoints, cpu * 1000 / count, model_frames / count)


def pixel_errors(
    run: list[np.ndarray | None], reference: list[np.ndarray | None], joints: np.ndarray
) -> np.ndarray:
    """Distances (px) of the `joints` on frames where both found someone."""
    errors = [
        np.linalg.norm(a[joints, :2] - b[joints, :2], axis=1)
        for a, b in zip(run, reference, strict=True)
        if a is not None and b is not None
    ]
    return np.concatenate(errors) if errors else np.array([np.nan])


def _body_joints(reference: list[np.ndarray | None]) -> np.ndarray:
    """The 12 body joints (shoulders to ankles) plus the nose: what the analysis reads."""
    return np.array([0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])


def clips(frames: int, real: bool) -> Iterator[Clip]:
    yield rendered_clip("squat", "side", frames)
    yield rendered_clip("jumping_jack", "front", frames)
    if real:
        from .real_footage import lab_station, two_people_outdoors

        for path in lab_station().videos[:2]:
            name = f"real: Pose2Sim {path.stem}, 30 fps, half size"
            yield video_clip(name, str(path), frames, 2, 0.5)
        name = "real: Sports2D two people, 15 fps, 1768x994"
        yield video_clip(name, str(two_people_outdoors()), frames, 2, 1.0)


WORKER_PATHS: dict[str, PoseSettings] = {
    "every frame, full, legacy API (wave 2)": PATHS[REFERENCE],
    "keyframes + flow, full": PATHS["keyframes + flow, full"],
}
WARM_UP_FRAMES = 10  # not counted: the first model frames and the tracker's start


def _process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def worker_cpu(settings: PoseSettings, frames: list[Any], fps: float) -> tuple[float, float]:
    """CPU ms per frame of one pose worker process serving one camera, and the share of
    frames the flow carried (frames: yuv420p av.VideoFrames of a squat)."""
    from ..pose.worker_pool import PoseWorkerPool

    pool = PoseWorkerPool(1, settings)
    pool.start()
    try:
        (pid,) = pool.worker_pids()
        channel = pool.open_camera("bench")
        analysis = LiveAnalysis("bench")
        analysis.set_exercise("squat")
        movement: float | None = None
        tracked, started = 0, 0.0
        for index, frame in enumerate(frames):
            if index == WARM_UP_FRAMES:
                started = _process_cpu_s(pid)
            layout = channel.write_yuv420p(frame.planes, frame.width, frame.height)
            result = await channel.analyse(layout, int(index * 1000 / fps), movement)
            tracked += result.tracked and index >= WARM_UP_FRAMES
            people = [pose.to_json() for pose in result.poses]
            snapshot, _ = analysis.analyse(people, frame.width, frame.height, index / fps)
            movement = movement_signal(snapshot)
        used = _process_cpu_s(pid) - started
        channel.close()
    finally:
        pool.stop()
    counted = max(len(frames) - WARM_UP_FRAMES, 1)
    return used * 1000 / counted, tracked / counted


def main_worker(frames: int) -> None:
    import av

    from ..synthetic.exercise_video import ExercisingPersonSource

    print("| clip | path | worker CPU ms/frame | tracked by flow |")
    print("|---|---|---|---|")
    for view in ("side", "front"):
        source = ExercisingPersonSource(640, 480, 15.0, exercise="squat", view=view)
        clip = [
            av.VideoFrame.from_ndarray(source.read(), format="rgb24").reformat(format="yuv420p")
            for _ in range(frames + WARM_UP_FRAMES)
        ]
        for label, settings in WORKER_PATHS.items():
            ms, tracked = asyncio.run(worker_cpu(settings, clip, 15.0))
            print(f"| rendered squat, {view} | {label} | {ms:.2f} | {tracked:.0%} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--real", action="store_true", help="also the real footage")
    parser.add_argument(
        "--worker", action="store_true", help="the pose worker process's CPU per frame instead"
    )
    args = parser.parse_args(argv)
    if args.worker:
        main_worker(args.frames)
        return
    print(
        "| clip | path | CPU ms/frame | model on | median / p95 px vs every-frame full "
        "| median px vs truth |"
    )
    print("|---|---|---|---|---|---|")
    for clip in clips(args.frames, args.real):
        runs = [run_path(label, settings, clip) for label, settings in PATHS.items()]
        reference = runs[0].keypoints
        joints = _body_joints(reference)
        for run in runs:
            errors = pixel_errors(run.keypoints, reference, joints)
            truth = ""
            if clip.truth is not None:
                true: list[np.ndarray | None] = [t[:, :2] for t in clip.truth]
                truth = f"{np.nanmedian(pixel_errors(run.keypoints, true, joints)):.1f}"
            print(
                f"| {clip.name} | {run.label} | {run.cpu_ms_per_frame:.1f} | "
                f"{run.model_share:.0%} | {np.nanmedian(errors):.1f} / "
                f"{np.nanpercentile(errors, 95):.1f} | {truth} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
