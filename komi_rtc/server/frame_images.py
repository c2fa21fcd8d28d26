"""`/get-image` and `/latest_image` (the original KOMI service's snapshot endpoints): the
newest frame of a camera as JPEG, encoded in a thread and at most once per frame."""

from __future__ import annotations

import asyncio
import base64
import weakref

import cv2
from aiohttp import web

from ..protocol import validate_camera_id
from .camera_registry import CameraRegistry
from .camera_session import CameraSession


class FrameImages:
    def __init__(self, registry: CameraRegistry) -> None:
        self._registry = registry
        # camera -> (frame version, JPEG); an entry goes with its session
        self._cache: weakref.WeakKeyDictionary[CameraSession, tuple[int, bytes]] = (
            weakref.WeakKeyDictionary()
        )

    def _session(self, request: web.Request) -> CameraSession:
        return self._registry.get(validate_camera_id(request.match_info["camera_id"]))

    async def _newest_jpeg(self, session: CameraSession) -> tuple[bytes, float]:
        """The newest frame as JPEG and when it arrived (unix seconds); 503 before any."""
        item = session.newest.latest
        if item is None:
            raise web.HTTPServiceUnavailable(reason="no frame received from this camera yet")
        version = session.newest.version
        cached = self._cache.get(session)
        if cached is not None and cached[0] == version:
            return cached[1], item.received_wall

        def encode() -> bytes:
            bgr = item.frame.to_ndarray(format="bgr24")
            ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
            return data.tobytes()

        jpeg = await asyncio.get_running_loop().run_in_executor(None, encode)
        self._cache[session] = (version, jpeg)
        return jpeg, item.received_wall

    async def latest_image(self, request: web.Request) -> web.Response:
        session = self._session(request)
        jpeg, received = await self._newest_jpeg(session)
        return web.json_response(
            {
                "camera_id": session.camera_id,
                "timestamp": received,
                "image_data": base64.b64encode(jpeg).decode(),
                "pose_data": session.latest_pose_data,
            }
        )

    async def get_image(self, request: web.Request) -> web.Response:
        jpeg, _ = await self._newest_jpeg(self._session(request))
        return web.Response(body=jpeg, content_type="image/jpeg")
