"""Several cameras on one person: calibration, triangulated 3-D keypoints and 3-D joint angles.

Pure geometry (numpy, OpenCV, scipy), no network or pose model: the station runtime in
`komi_rtc.server` feeds it 2-D keypoints paired by capture time.
`cameras` (the pinhole model, a station's calibration as JSON) <- `board` (the ChArUco board)
<- `board_calibration`; `triangulation` <- `body_frame` (stature, a floor frame) <-
`self_calibration` (the person's own keypoints); `angles3d`; calibrations made elsewhere:
`calibration_toml` (Pose2Sim/Anipose files), `qualisys` (a lab's Qualisys export).
`synthetic_station` renders a station whose truth is known, for the tests and
`python -m komi_rtc.bench.multiview`.
"""

from .angles3d import joint_angles_3d
from .board import DEFAULT_SQUARE_M, BoardView, board_png, detect_board
from .board_calibration import calibrate_from_board
from .body_frame import anchor_to_person, estimate_stature
from .calibration_toml import parse_toml, to_toml
from .cameras import CalibrationError, CameraModel, StationCalibration
from .qualisys import read_qualisys
from .self_calibration import self_calibrate
from .triangulation import (
    DEFAULT_GATE_PX,
    Triangulated,
    gate_px,
    mirrored_keypoints,
    triangulate,
    triangulate_points,
    wire_pose3d,
)

__all__ = [
    "DEFAULT_GATE_PX",
    "DEFAULT_SQUARE_M",
    "BoardView",
    "CalibrationError",
    "CameraModel",
    "StationCalibration",
    "Triangulated",
    "anchor_to_person",
    "board_png",
    "calibrate_from_board",
    "detect_board",
    "estimate_stature",
    "gate_px",
    "joint_angles_3d",
    "mirrored_keypoints",
    "parse_toml",
    "read_qualisys",
    "self_calibrate",
    "triangulate",
    "to_toml",
    "triangulate_points",
    "wire_pose3d",
]
