"""A custom exercise derived from a trainer's reference filmed as video (through BlazePose):
new sessions of the same movement are counted right; a different movement scores low."""

from __future__ import annotations

import json
from pathlib import Path

from komi_rtc.analysis.catalog import Catalog
from komi_rtc.analysis.derive import derive_exercise
from komi_rtc.analysis.replay import analyse_recording
from komi_rtc.pose.estimator import BlazePoseFull
from komi_rtc.synthetic import ExercisingPersonSource, Look, Tempo

FPS = 15.0


def _record(path: Path, source: ExercisingPersonSource) -> Path:
    """One loop of the rendered performance through BlazePose, in the recording format."""
    estimator = BlazePoseFull()
    frames = int(source.performance.loop_seconds * FPS)
    try:
        with path.open("w", encoding="utf-8") as out:
            for index in range(frames):
                t = index / FPS
                poses = estimator.estimate(source.read(), int(t * 1000))
                message = {
                    "type": "frame_processed",
                    "camera_id": "trainer",
                    "frame_pts": index * 6000,
                    "timestamp": t,
                    "width": 640,
                    "height": 480,
                    "pose_data": {"pose": [p.to_json() for p in poses], "timestamp": t},
                    "timing": {"receive": t},
                }
                out.write(json.dumps(message) + "\n")
    finally:
        estimator.close()
    return path


def test_custom_exercise_derived_from_video_counts_the_same_movement_only(tmp_path):
    trainer = ExercisingPersonSource(640, 480, FPS, "lateral_raise", "front", reps_per_set=4)
    definition = derive_exercise(_record(tmp_path / "reference.jsonl", trainer), "my_raise", "R")
    assert definition["reference"]["reps"] == 4
    assert definition["signal"]["front"]["angle"] == "shoulder"
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "my_raise.json").write_text(json.dumps(definition))
    catalog = Catalog(tmp_path / "exercises")

    # someone else, other clothes, another tempo: the same movement
    look = Look(shirt=(200, 60, 60), pants=(30, 30, 30), skin=(160, 110, 80), body_height=0.6)
    user = ExercisingPersonSource(
        640, 480, FPS, "lateral_raise", "front", look=look, reps_per_set=5,
        tempo=Tempo(down=0.8, hold=0.4, up=1.3, pause=0.3),
    )  # fmt: skip
    same = analyse_recording(_record(tmp_path / "user.jsonl", user), "my_raise", catalog=catalog)
    assert same["reps"] == 5
    assert min(same["rep_scores"]) >= 60, same["rep_scores"]

    # a different movement of the same joint: jumping jacks swing the arms far overhead
    other = ExercisingPersonSource(640, 480, FPS, "jumping_jack", "front", reps_per_set=5)
    jacks = analyse_recording(_record(tmp_path / "jacks.jsonl", other), "my_raise", catalog=catalog)
    scores = jacks["rep_scores"]
    print("same movement scores", same["rep_scores"], "other movement scores", scores)
    assert scores, "the other movement passes the raise's thresholds, so its reps are scored"
    assert max(scores) < min(same["rep_scores"]) - 20, (scores, same["rep_scores"])
