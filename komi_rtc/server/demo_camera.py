"""The demo camera: a rendered person doing squats streamed into the server itself, so a
first look shows reps counted."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from ..camera.peer import CameraPeer
from ..media.video_sources import demo_source
from .config import ServerConfig

logger = logging.getLogger(__name__)


DEMO_CAMERA = "demo_camera"
DEMO_PERSON = "demo"  # whose history the demo fills (its sets, a chart, a plan)


def demo_camera_id(node_id: str | None) -> str:
    """`demo_camera`, or in a cluster `demo_<node id>`: every node's demo is its own camera
    (one shared id would be live on one node and refused on the others)."""
    if node_id is None:
        return DEMO_CAMERA
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"demo_{node_id}")[:64]


def start_demo_camera(
    config: ServerConfig, token: str | None, camera_id: str = DEMO_CAMERA
) -> tuple[asyncio.Task[None], Any]:
    """A camera peer inside the server streaming a rendered person doing squats, with the
    exercise set, so a first look shows reps counted."""

    scheme = "https" if config.https else "http"
    source = demo_source("demo", 640, 480, config.demo_fps)
    peer = CameraPeer(
        f"{scheme}://127.0.0.1:{config.port}",
        camera_id,
        source,
        fps=config.demo_fps,
        verify_tls=False,  # our own certificate, on loopback
        exercise=source.exercise,
        token=token,
        person=DEMO_PERSON,
    )
    task = asyncio.ensure_future(peer.run())
    task.set_name(camera_id)
    logger.info(
        "[%s] streaming %s at %g fps, %s analysed",
        camera_id,
        source.description,
        config.demo_fps,
        source.exercise,
    )
    return task, peer
