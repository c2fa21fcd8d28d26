"""Would BlazePose's world landmarks measure range of motion better than the picture?
(`python -m komi_rtc.bench.world_landmarks`, issue 24).

Reads the poses the video benchmark stored (`python -m komi_rtc.bench.video --poses DIR`):
per true full rep, the range of one joint angle from the true skeleton in 3-D against the
same angle from BlazePose's world landmarks (metres, 3-D), from BlazePose's keypoints in
the picture (2-D) and from the true keypoints in the picture (what foreshortening alone
costs). Each range is the larger of the two sides' (labels may be swapped). Degrees.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..protocol import KEYPOINT_INDEX as K
from ..synthetic.skeleton import forward_kinematics
from .sessions import make_session
from .video import SPLITS, _filmed, cases

# the joint angle each exercise moves (a, vertex, b)
MOVED = {
    "squat": ("hip", "knee", "ankle"),
    "lunge_left": ("hip", "knee", "ankle"),
    "lunge_right": ("hip", "knee", "ankle"),
    "bicep_curl": ("shoulder", "elbow", "wrist"),
    "jumping_jack": ("hip", "shoulder", "elbow"),
}
SOURCES = ("world_3d", "model_2d", "truth_2d")


def _angles(points: np.ndarray, side: str, parts: tuple[str, str, str]) -> np.ndarray:
    """(frames, 33, d) -> (frames,) degrees at the vertex; NaN where a point is missing."""
    a, vertex, b = (points[:, K[f"{side}_{p}"], :] for p in parts)
    u, w = a - vertex, b - vertex
    norms = np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1) + 1e-9
    return np.degrees(np.arccos(np.clip((u * w).sum(-1) / norms, -1.0, 1.0)))


def _range(values: list[np.ndarray]) -> float | None:
    ranges = [float(np.nanmax(v) - np.nanmin(v)) for v in values if not np.isnan(v).all()]
    return max(ranges) if ranges else None


def measure(split: str, per_view: int, store: Path) -> dict[str, dict[str, float | int]]:
    """Mean |ROM - true 3-D ROM| per exercise/view and source, over the stored sessions."""
    errors: dict[str, dict[str, list[float]]] = {}
    for case in cases(split, per_view, list(MOVED)):
        name = f"{case.split}-{case.exercise}-{case.view}-{case.index}-{case.seed}.npz"
        if not (store / name).exists():
            continue
        session = make_session(case.exercise, case.view, np.random.default_rng(case.seed))
        filmed = _filmed(case, session, store)
        if filmed.world is None:
            continue
        bodies = {round(t, 6): j for t, j in session.frames}
        true_3d = np.array(
            [
                forward_kinematics(body) if body is not None else np.full((33, 3), np.nan)
                for body in (bodies[round(float(t), 6)] for t in filmed.times)
            ]
        )
        points = {
            "world_3d": filmed.world.astype(np.float64),
            "model_2d": filmed.poses[..., :2].astype(np.float64),
            "truth_2d": filmed.truth,
        }
        parts = MOVED[case.exercise]
        sides = ("left", "right")
        truth = {s: _angles(true_3d, s, parts) for s in sides}
        seen = {k: {s: _angles(p, s, parts) for s in sides} for k, p in points.items()}
        row = errors.setdefault(f"{case.exercise}/{case.view}", {k: [] for k in SOURCES})
        for rep in session.reps:
            during = (filmed.times >= rep.start) & (filmed.times <= rep.end)
            true_rom = _range([truth[s][during] for s in sides])
            if not rep.full or during.sum() < 3 or true_rom is None:
                continue
            for source in SOURCES:
                rom = _range([seen[source][s][during] for s in sides])
                if rom is not None:
                    row[source].append(abs(rom - true_rom))
    return {
        key: {
            **{k: round(float(np.mean(v)), 1) for k, v in row.items() if v},
            "reps": len(row["truth_2d"]),
        }
        for key, row in errors.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m komi_rtc.bench.world_landmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--poses", type=Path, required=True, help="the video bench's --poses")
    parser.add_argument("--split", choices=list(SPLITS), default="dev")
    parser.add_argument("--sessions", type=int, default=2, help="sessions per exercise and view")
    args = parser.parse_args(argv)
    table = measure(args.split, args.sessions, args.poses)
    print(f"| exercise / view ({args.split}) | reps | " + " | ".join(SOURCES) + " |")
    print("|---|---|" + "---|" * len(SOURCES))
    for key, row in table.items():
        cells = " | ".join(f"{row.get(k, '–')} deg" for k in SOURCES)
        print(f"| {key} | {row['reps']} | {cells} |")
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
