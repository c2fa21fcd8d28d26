"""The BlazePose model choice (`--pose-model lite|full|heavy`) and the `.task` bundle each one
needs for MediaPipe's Tasks API.

The Tasks `PoseLandmarker` takes real frame times (the legacy solution assumes 30 fps) but
loads only a `.task` bundle, and Google publishes none for the versions we pin. So one is built
at first use, offline, from files already here: the pose detector in the mediapipe wheel and a
landmark model (lite: shipped in `models/`; full: in the wheel; heavy: fetched by
`scripts/setup.sh --heavy`), with the image metadata the Tasks API reads (pixels scaled to
0..1: mean 0, std 255, as the legacy graph feeds it). Every source is checked against its
sha256 first; the bundle is written to a cache directory atomically, so two workers building
it at once both end with a whole file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from .estimator import BlazePoseLegacy, ModelError, PoseEstimator, TaskPoseLandmarker
from .followed_person import OnePersonLandmarker

PoseModel = Literal["lite", "full", "heavy"]
POSE_MODELS: tuple[str, ...] = get_args(PoseModel)
DEFAULT_POSE_MODEL: PoseModel = "full"

_SHIPPED = Path(__file__).resolve().parent / "models"

# sha256 of each landmark model, as published in npm `@mediapipe/pose` 0.5.1675469404 (its
# full model is byte-identical to the one in the mediapipe 0.10.21 wheel)
LANDMARK_SHA256: dict[str, str] = {
    "lite": "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
    "full": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    "heavy": "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
}
_BUNDLE_FORMAT = 1  # bump when the way a bundle is built changes: old caches are rebuilt


def model_cache_dir() -> Path:
    """`$KOMI_MODEL_DIR`, else `~/.cache/komi_rtc/models`: built bundles and the heavy model."""
    configured = os.environ.get("KOMI_MODEL_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "komi_rtc" / "models"


def _mediapipe_dir() -> Path:
    import mediapipe

    return Path(mediapipe.__file__).resolve().parent


def landmark_model_path(model: str) -> Path:
    """Where the landmark model of `model` is; raises ModelError (with what to do) when it is
    not there."""
    if model == "lite":
        return _SHIPPED / "pose_landmark_lite.tflite"
    if model == "full":
        return _mediapipe_dir() / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    if model == "heavy":
        path = model_cache_dir() / "pose_landmark_heavy.tflite"
        if not path.is_file():
            raise ModelError(
                f"the heavy pose model is not installed ({path} is missing): run "
                "scripts/setup.sh --heavy to fetch it (28 MB), or use --pose-model full or lite"
            )
        return path
    raise ModelError(f"unknown pose model {model!r}; choose one of {', '.join(POSE_MODELS)}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _with_image_metadata(model: bytes, name: str) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    writer = (
        metadata_writer.MetadataWriter.create(bytearray(model))
        .add_general_info(name)
        .add_image_input(norm_mean=[0.0], norm_std=[255.0])
    )
    for _ in writer_utils.get_output_tensor_names(bytearray(model)):
        writer.add_feature_output()
    return bytes(writer.populate()[0])


def bundle_path(model: str) -> Path:
    """The `.task` bundle for `model`, built on first use from local files only. Raises
    ModelError for an unknown or missing model, or a file whose checksum is wrong."""
    source = landmark_model_path(model)
    landmarks = source.read_bytes()
    if _sha256(landmarks) != LANDMARK_SHA256[model]:
        raise ModelError(f"pose model {source} is damaged (sha256 does not match)")
    target = model_cache_dir() / f"pose_landmarker_{model}_{LANDMARK_SHA256[model][:12]}"
    target = target.with_name(f"{target.name}_v{_BUNDLE_FORMAT}.task")
    if target.is_file():
        return target
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    detector = _mediapipe_dir() / "modules" / "pose_detection" / "pose_detection.tflite"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        model_asset_bundle_utils.create_model_asset_bundle(
            {
                # the detector carries its own input range (-1..1); only the landmarks need it
                "pose_detector.tflite": detector.read_bytes(),
                "pose_landmarks_detector.tflite": _with_image_metadata(landmarks, "pose landmarks"),
            },
            partial,
        )
        os.chmod(partial, 0o644)  # mkstemp makes it private; a cache is for every user
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


@dataclass(frozen=True)
class PoseSettings:
    """How the server finds poses: which BlazePose model, or a user's `.task` file (which
    looks for several people), or the legacy solutions API (wave 2's path, for comparison),
    and at most how many frames apart the model runs (1: on every frame; optical flow carries
    the keypoints in between, see keyframes.py)."""

    model: str = DEFAULT_POSE_MODEL
    model_path: str | None = None
    legacy: bool = False
    max_keyframe_interval: int = 3

    def describe(self) -> str:
        if self.model_path:
            what = f"{self.model_path} (several people)"
        elif self.legacy:
            what = "BlazePose full, legacy API"
        else:
            what = f"BlazePose {self.model}"
        if self.max_keyframe_interval > 1:
            return f"{what}, model every 1-{self.max_keyframe_interval} frames + optical flow"
        return f"{what}, every frame"

    def check(self) -> None:
        """Raise ModelError now (at start, not in a worker) for a model that is not there."""
        if self.model_path:
            if not os.path.isfile(self.model_path):
                raise ModelError(f"pose model file not found: {self.model_path}")
        elif not self.legacy:
            landmark_model_path(self.model)


def create_estimator(settings: PoseSettings | None = None) -> PoseEstimator:
    """A new estimator (each camera needs its own: it keeps tracking state)."""
    settings = settings or PoseSettings()
    if settings.model_path:
        people = OnePersonLandmarker.LOOK_FOR_PEOPLE
        return TaskPoseLandmarker(settings.model_path, num_poses=people)
    if settings.legacy:
        return BlazePoseLegacy()
    return OnePersonLandmarker(str(bundle_path(settings.model)))
