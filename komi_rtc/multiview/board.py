"""The station's calibration board: a ChArUco board, printed or shown on a screen, and its
detection in a camera frame.

The board is 5 x 7 squares (5 across, 7 down) with ArUco markers of OpenCV's DICT_4X4_50 in
the white squares, each marker 0.7 of a square, which gives 24 inner chessboard corners. Its
physical size is whatever it is printed at: the calibration needs the measured side of one
square (`square_length_m`). The default, 0.08 m, is the board printed on an A2 sheet (0.40 x
0.56 m of squares): a board filmed from 3 m by a 1280x720 camera needs squares of about this
size for its 4x4 markers to be read (an A4 print, 0.03 m squares, must be held within about
1.2 m of every camera).

Board coordinates (metres): origin at the top-left corner of the squares, x to the right, y
down, z into the board (so its printed face looks along -z).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

SQUARES = (5, 7)  # across, down
MARKER_SHARE = 0.7
DICTIONARY = cv2.aruco.DICT_4X4_50
DEFAULT_SQUARE_M = 0.08
# fewer corners than this in a view say little about the camera, and calibrateCamera
# needs non-collinear points
MIN_CORNERS = 6


@lru_cache(maxsize=4)
def charuco_board(square_length_m: float = DEFAULT_SQUARE_M) -> cv2.aruco.CharucoBoard:
    dictionary = cv2.aruco.getPredefinedDictionary(DICTIONARY)
    return cv2.aruco.CharucoBoard(
        SQUARES, square_length_m, square_length_m * MARKER_SHARE, dictionary
    )


@lru_cache(maxsize=1)
def _detector() -> cv2.aruco.CharucoDetector:
    # detection does not depend on the board's physical size
    return cv2.aruco.CharucoDetector(charuco_board())


def board_image(pixels_per_square: int = 120) -> np.ndarray:
    """The board as a grey uint8 image with a white margin of half a square on every side:
    (7 + 1) * p rows by (5 + 1) * p columns for p pixels per square; the top-left corner of
    the squares is at pixel (p // 2, p // 2)."""
    p = int(pixels_per_square)
    if p < 20:
        raise ValueError("pixels_per_square must be at least 20 for the markers to be legible")
    margin = p // 2
    squares = charuco_board().generateImage((SQUARES[0] * p, SQUARES[1] * p), marginSize=0)
    return cv2.copyMakeBorder(
        squares, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(255,)
    )


def board_png(pixels_per_square: int = 120) -> bytes:
    """A printable PNG of the board (see the module docstring: 5 x 7 squares, DICT_4X4_50
    markers of 0.7 square, a white margin of half a square). Print it at any size, flat and
    not stretched, and measure a square's side for the calibration."""
    ok, encoded = cv2.imencode(".png", board_image(pixels_per_square))
    if not ok:  # pragma: no cover - encoding a small grey image does not fail
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


@dataclass(frozen=True)
class BoardView:
    """The board as one camera saw it: `corners` (N, 2) pixels of the inner chessboard
    corners found, `ids` (N,) their numbers (0..23, row by row from the top left)."""

    corners: np.ndarray
    ids: np.ndarray
    image_size: tuple[int, int]  # width, height

    def object_points(self, square_length_m: float = DEFAULT_SQUARE_M) -> np.ndarray:
        """(N, 3) board coordinates (metres) of the corners seen."""
        all_corners = charuco_board(square_length_m).getChessboardCorners()
        return np.asarray(all_corners, np.float64)[self.ids]


def detect_board(image_bgr: np.ndarray) -> BoardView | None:
    """Find the board in a BGR (or grey) frame; None when fewer than `MIN_CORNERS` corners
    are found. Corners are refined to sub-pixel precision by OpenCV."""
    grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    corners, ids, _, _ = _detector().detectBoard(grey)
    if corners is None or ids is None or len(ids) < MIN_CORNERS:
        return None
    ids = ids.ravel().astype(np.int64)
    board = charuco_board()
    if board.checkCharucoCornersCollinear(ids.reshape(-1, 1).astype(np.int32)):
        return None
    height, width = grey.shape[:2]
    return BoardView(corners.reshape(-1, 2).astype(np.float64), ids, (width, height))
