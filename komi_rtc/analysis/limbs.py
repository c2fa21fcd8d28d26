"""Which joint is which, and which are there: decided by geometry and continuity, not by
BlazePose's labels and visibility.

Seen in profile, BlazePose often swaps a person's left and right limbs, whole or in part
(the front knee paired with the back ankle), and gives well-placed joints a low
visibility, more or less often depending on clothes and shading (issue 24: a side curl
counted 0 of 6 because the near wrist came at visibility 0.2 under the far arm's label).
`LimbReader` runs before everything else in the analysis and returns the keypoints with

- in profile, each limb re-assembled from the labelled joints so that its bones keep their
  length and its joints stay where they were a frame ago (a partial swap is undone, and
  a limb keeps its name through a whole swap);
- the visibility of every joint whose position is plausible raised to `PRESENT`: inside
  reach of the joint above it (bone lengths measured against the trunk) and not jumped
  across the body since the last frame. A joint placed where no body reaches keeps its low
  visibility and is missing, as before.
"""

from __future__ import annotations

import math

import numpy as np

from ..protocol import KEYPOINT_INDEX as K

PRESENT = 0.5  # geometry.MIN_CONFIDENCE: a plausible joint is read like a well-seen one

# a limb: its joints from the trunk outwards, and the points that travel with its end
LIMBS: dict[str, tuple[tuple[str, str, str], tuple[str, ...]]] = {
    "arm": (("shoulder", "elbow", "wrist"), ("pinky", "index", "thumb")),
    "leg": (("hip", "knee", "ankle"), ("heel", "foot_index")),
}
# The longest a bone may look, in trunk lengths (shoulder centre to hip centre). People
# measure about 0.57 (upper arm), 0.5 (forearm), 0.82 (thigh, shin); the margin covers
# other builds, a trunk leaning toward the camera and perspective.
LONGEST = {"shoulder": 0.95, "elbow": 0.9, "hip": 1.35, "knee": 1.35}
END_REACH = 0.6  # hands and feet points: at most this far from the wrist or ankle, trunks
# A joint that moved more than this (trunk lengths) since the last frame jumped: a fast
# curl moves the wrist about half a trunk length in a tenth of a second.
LONGEST_JUMP = 1.2
CONTINUITY_S = 0.5  # the last frame counts for continuity if it is this recent
TRUNK_MEMORY_FADE = 0.1  # the trunk length remembered fades this much a second
# Labels stand unless re-pairing makes the bones' lengths (summed over both limbs), or
# the joints' movement since the last frame, this much shorter, in trunk lengths.
SWAP_MARGIN = 0.15
BONE_MEMORY = 0.9  # each frame keeps this share of the remembered bone length


Rows = list[list[float]]  # (33, 4) as Python lists: scalar arithmetic, fast per frame
# each limb's joints by side, as keypoint indices
_CHAINS = {
    joints: {side: tuple(K[f"{side}_{j}"] for j in joints) for side in ("left", "right")}
    for joints, _ in LIMBS.values()
}


def _distance(a: list[float], b: list[float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _index(side: str, part: str) -> int:
    return K[f"{side}_{part}"]


def _swap(rows: Rows, parts: tuple[str, ...]) -> None:
    for part in parts:
        left, right = _index("left", part), _index("right", part)
        rows[left], rows[right] = rows[right], rows[left]


class LimbReader:
    """Per person being analysed: call `read` on every frame, in order."""

    def __init__(self) -> None:
        self._previous: Rows | None = None
        self._previous_t: float | None = None
        self._trunk: tuple[float, float] | None = None  # (pixels, when)
        self._bones: dict[str, float] = {}  # joint above the bone -> its length, pixels

    def read(self, kp: np.ndarray, profile: bool, t: float) -> np.ndarray:
        """`kp` (33, 4) as the analysis should read it (a new array; `kp` is not changed).
        `profile`: the person is seen from the side, where labels are swapped."""
        rows: Rows = kp.tolist()
        trunk = self._trunk_length(rows, t)
        recent = (
            self._previous
            if self._previous is not None
            and self._previous_t is not None
            and 0 <= t - self._previous_t <= CONTINUITY_S
            else None
        )
        if trunk:
            if profile:
                for joints, ends in LIMBS.values():
                    self._pair(rows, joints, ends, trunk, recent)
            self._mark_present(rows, trunk, recent)
            self._remember_bones(rows)
        self._previous, self._previous_t = rows, t
        return np.array(rows, dtype=kp.dtype)

    # ------------------------------------------------------------ scale

    @staticmethod
    def _trunk_centres(rows: Rows) -> tuple[list[float], list[float]]:
        ls, rs = rows[K["left_shoulder"]], rows[K["right_shoulder"]]
        lh, rh = rows[K["left_hip"]], rows[K["right_hip"]]
        shoulders = [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2]
        hips = [(lh[0] + rh[0]) / 2, (lh[1] + rh[1]) / 2]
        return shoulders, hips

    def _trunk_length(self, rows: Rows, t: float) -> float | None:
        """The trunk's length, pixels: the longest it looked lately (a bend or a lean toward
        the camera shortens it; positions only, whatever their visibility)."""
        now = _distance(*self._trunk_centres(rows))
        if self._trunk is not None:
            length, when = self._trunk
            now = max(now, length * (1.0 - TRUNK_MEMORY_FADE) ** max(0.0, t - when))
        if not math.isfinite(now) or now < 1.0:
            return None
        self._trunk = (now, t)
        return now

    # ------------------------------------------------------------ pairing

    def _pair(
        self,
        rows: Rows,
        joints: tuple[str, str, str],
        ends: tuple[str, ...],
        trunk: float,
        recent: Rows | None,
    ) -> None:
        """Re-assemble a pair of limbs from their labelled joints. First the middle joints
        and the ends (with their hand or foot points) go to the roots that give two limbs
        with bones of their usual length (a partial swap is undone); then the two limbs
        take the names under which their joints were a frame ago (a whole swap is undone).
        Labels stand unless the other way is clearly better (`SWAP_MARGIN`)."""
        sides = (_CHAINS[joints]["left"], _CHAINS[joints]["right"])
        # length[level][a][b]: from side a's joint at `level` to side b's joint below it
        length = [
            [[_distance(rows[a[level]], rows[b[level + 1]]) / trunk for b in sides] for a in sides]
            for level in (0, 1)
        ]
        usual = [self._bones.get(joints[0]), self._bones.get(joints[1])]

        def bone(level: int, value: float) -> float:
            known = usual[level]
            off = abs(value - known / trunk) if known is not None else 0.0
            return off + max(0.0, value - LONGEST[joints[level]]) * 4.0

        def cost(middle: int, end: int) -> float:
            """Both limbs' bones if the middle joints (1) and the ends (1) are swapped."""
            return (
                bone(0, length[0][0][middle])
                + bone(1, length[1][middle][end])
                + bone(0, length[0][1][1 - middle])
                + bone(1, length[1][1 - middle][1 - end])
            )

        best, best_cost = (0, 0), cost(0, 0) - SWAP_MARGIN
        for middle, end in ((0, 1), (1, 0), (1, 1)):
            now = cost(middle, end)
            if now < best_cost:
                best, best_cost = (middle, end), now
        if best[0]:
            _swap(rows, (joints[1],))
        if best[1]:
            _swap(rows, (joints[2], *ends))
        if recent is not None:
            kept = swapped = 0.0
            for left, right in zip(*sides, strict=True):
                kept += _distance(rows[left], recent[left]) + _distance(rows[right], recent[right])
                swapped += _distance(rows[left], recent[right]) + _distance(
                    rows[right], recent[left]
                )
            if swapped / trunk < kept / trunk - SWAP_MARGIN:
                _swap(rows, (*joints, *ends))

    def _remember_bones(self, rows: Rows) -> None:
        """The usual length of each bone, from the limbs' present joints."""
        for joints, _ in LIMBS.values():
            for level in (0, 1):
                upper, lower = joints[level], joints[level + 1]
                lengths = [
                    _distance(rows[_index(s, upper)], rows[_index(s, lower)])
                    for s in ("left", "right")
                    if min(rows[_index(s, upper)][3], rows[_index(s, lower)][3]) >= PRESENT
                ]
                if not lengths:
                    continue
                now = sum(lengths) / len(lengths)
                usual = self._bones.get(upper)
                self._bones[upper] = (
                    now if usual is None else usual * BONE_MEMORY + now * (1 - BONE_MEMORY)
                )

    # ------------------------------------------------------------ presence

    def _mark_present(self, rows: Rows, trunk: float, recent: Rows | None) -> None:
        """Raise the visibility of plausibly placed limb joints to PRESENT, from the trunk
        outwards: a shoulder or hip within reach of the trunk's middle, then each joint
        whose bone from the joint above is not longer than a body's; none that jumped since
        the last frame."""
        shoulders, hips = self._trunk_centres(rows)
        middle = [(shoulders[0] + hips[0]) / 2, (shoulders[1] + hips[1]) / 2]

        def steady(i: int) -> bool:
            return recent is None or _distance(rows[i], recent[i]) <= LONGEST_JUMP * trunk

        for joints, ends in LIMBS.values():
            for side in ("left", "right"):
                root = _index(side, joints[0])
                if not (_distance(rows[root], middle) <= trunk and steady(root)):
                    continue
                rows[root][3] = max(rows[root][3], PRESENT)
                for level in (1, 2):
                    upper, lower = _index(side, joints[level - 1]), _index(side, joints[level])
                    bone = _distance(rows[upper], rows[lower])
                    if not (bone <= LONGEST[joints[level - 1]] * trunk and steady(lower)):
                        break
                    rows[lower][3] = max(rows[lower][3], PRESENT)
                else:
                    end = rows[_index(side, joints[2])]
                    for part in ends:
                        point = rows[_index(side, part)]
                        if _distance(point, end) <= END_REACH * trunk:
                            point[3] = max(point[3], PRESENT)
