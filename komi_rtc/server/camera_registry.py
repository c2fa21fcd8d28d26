"""Which cameras exist, and who wants to hear when that changes (`/ws/monitor` clients)."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Protocol

from ..protocol import DuplicateCamera, UnknownCamera
from ..protocol.messages import CamerasList, FrameProcessed, StatusUpdate, encode
from .camera_session import CameraSession
from .limits import ServerFull

logger = logging.getLogger(__name__)

WARM_UP_CLIP_MS = 100.0  # no steady frame costs more (BlazePose full 20-35 ms, heavy 56)

_WATCHER_QUEUE = 64


class RegistryListener(Protocol):
    """What a cluster (`server/cluster/`) hears from the registry, and adds to it."""

    def cameras_changed(self) -> None:
        """A camera was added here, or left."""

    def camera_event(self, session: CameraSession, text: str) -> None:
        """A rep or an exercise change of a camera here: `text` as sent to watchers."""

    def watchers_changed(self) -> None:
        """A `/ws/monitor` client of the whole cluster came or went."""

    def cameras_elsewhere(self) -> list[str]:
        """The cameras other nodes host (the cluster-wide camera list adds them)."""
        ...

    async def claim_camera(self, camera_id: str) -> None:
        """Take a camera id cluster-wide (DuplicateCamera when another node has it)."""


class CameraRegistry:
    def __init__(self, max_cameras: int = 0) -> None:
        self._max_cameras = max_cameras  # 0: no limit
        self._sessions: dict[str, CameraSession] = {}
        self._reserved: set[str] = set()
        self._watchers: set[asyncio.Queue[str]] = set()
        self._clients: set[asyncio.Queue[str]] = set()  # watchers of the whole cluster
        # a cluster lists every node's cameras and hears of local changes
        self._listeners: list[RegistryListener] = []
        self.inference_ms = 20.0  # moving mean of one frame's inference
        self.inference_measured = False
        self._inference_samples = 0

    def add_listener(self, listener: RegistryListener) -> None:
        """A cluster this node joined (`Cluster.start`; it removes itself when it leaves)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RegistryListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def ids(self) -> list[str]:
        return sorted(self._sessions)

    def listing(self) -> list[str]:
        """Every camera: this node's, and in a cluster every other node's too."""
        if not self._listeners:
            return self.ids()
        cameras = set(self._sessions)
        for listener in self._listeners:
            cameras.update(listener.cameras_elsewhere())
        return sorted(cameras)

    async def claim(self, camera_id: str) -> None:
        """Take a reserved id cluster-wide (nothing to do without a cluster)."""
        for listener in self._listeners:
            await listener.claim_camera(camera_id)

    def sessions(self) -> list[CameraSession]:
        return list(self._sessions.values())

    def get(self, camera_id: str) -> CameraSession:
        session = self._sessions.get(camera_id)
        if session is None:
            raise UnknownCamera(camera_id)
        return session

    def reserved(self) -> list[str]:
        """Ids being negotiated (their cluster claims are kept alive meanwhile)."""
        return sorted(self._reserved)

    @property
    def full(self) -> bool:
        """At --max-cameras (counting ids being negotiated)."""
        taken = len(self._sessions) + len(self._reserved)
        return bool(self._max_cameras) and taken >= self._max_cameras

    def reserve(self, camera_id: str | None) -> str:
        """Claim an id before the (slow) negotiation, so two offers cannot both win it."""
        taken = len(self._sessions) + len(self._reserved)
        if self._max_cameras and taken >= self._max_cameras:
            raise ServerFull(
                f"the server has its maximum of {self._max_cameras} cameras (--max-cameras)"
            )
        if camera_id is None:
            while True:
                camera_id = f"camera_{random.randint(10000, 99999)}"
                if camera_id not in self._sessions and camera_id not in self._reserved:
                    break
        elif camera_id in self._sessions or camera_id in self._reserved:
            raise DuplicateCamera(camera_id)
        self._reserved.add(camera_id)
        return camera_id

    def release(self, camera_id: str) -> None:
        self._reserved.discard(camera_id)

    def add(self, session: CameraSession) -> None:
        self._reserved.discard(session.camera_id)
        if session.closing:  # it failed while negotiating: never list it
            return
        self._sessions[session.camera_id] = session
        logger.info(
            "[%s] camera added (%s); %d camera(s)",
            session.camera_id,
            session.kind,
            len(self._sessions),
        )
        self._changed()
        self.push_list()

    async def remove(self, session: CameraSession) -> None:
        if self._sessions.get(session.camera_id) is session:
            del self._sessions[session.camera_id]
            logger.info("[%s] camera removed; %d camera(s)", session.camera_id, len(self._sessions))
            self._changed()
            self.push_list()

    def _changed(self) -> None:
        for listener in self._listeners:
            listener.cameras_changed()

    def push_list(self) -> None:
        """Tell every watcher the camera list (this node's, or the cluster's for clients)."""
        if not self._watchers:
            return
        local, everywhere = encode(CamerasList(self.ids())), encode(CamerasList(self.listing()))
        for queue in self._watchers:
            self._put(queue, everywhere if queue in self._clients else local, droppable=False)

    # ------------------------------------------------------------ /ws/monitor watchers

    def watch(self, whole_cluster: bool = True) -> asyncio.Queue[str]:
        """A `/ws/monitor` client's queue; `whole_cluster=False` for another node's relay
        (`?scope=node`), which hears of this node's cameras only."""
        queue: asyncio.Queue[str] = asyncio.Queue(_WATCHER_QUEUE)
        queue.put_nowait(encode(CamerasList(self.listing() if whole_cluster else self.ids())))
        self._watchers.add(queue)
        if whole_cluster:
            self._clients.add(queue)
            self._watchers_changed()
        return queue

    def unwatch(self, queue: asyncio.Queue[str]) -> None:
        self._watchers.discard(queue)
        if queue in self._clients:
            self._clients.discard(queue)
            self._watchers_changed()

    @property
    def has_clients(self) -> bool:
        return bool(self._clients)

    def _watchers_changed(self) -> None:
        for listener in self._listeners:
            listener.watchers_changed()

    def on_event(self, session: CameraSession, text: str) -> None:
        """A rep or an exercise change: every watcher hears it, and the cluster too."""
        self._push(text)
        for listener in self._listeners:
            listener.camera_event(session, text)

    def push_remote(self, text: str, droppable: bool) -> None:
        """Another node's status update or event: for the clients watching the cluster."""
        for queue in self._clients:
            self._put(queue, text, droppable)

    def on_result(self, session: CameraSession, message: FrameProcessed) -> None:
        timing = message.timing
        if timing is not None and timing.inference_ms:
            # what a frame costs a worker here, for the cluster's capacity (cluster/membership.py)
            # a worker's first frames (model warm-up) take ten times longer: clipped, but
            # never below a model frame's cost: with keyframes most frames cost the flow's
            # 1-2 ms, and clipping to 3 times a mean they pulled down kept the model's 20 ms
            # frames out, so a node read ten times its capacity and drew every camera
            sample = min(timing.inference_ms, max(3.0 * self.inference_ms, WARM_UP_CLIP_MS))
            self.inference_ms += 0.05 * (sample - self.inference_ms)
            self._inference_samples += 1
            self.inference_measured = self._inference_samples >= 20
        if not self._watchers:
            return
        status = StatusUpdate(
            session.camera_id, message.timestamp, message.pose_data, message.analysis
        )
        self._push(encode(status), droppable=True)

    def _push(self, text: str, droppable: bool = False) -> None:
        for queue in self._watchers:
            self._put(queue, text, droppable)

    @staticmethod
    def _put(queue: asyncio.Queue[str], text: str, droppable: bool) -> None:
        if queue.full():
            if droppable:
                return  # a slow watcher misses status updates, never the camera list
            queue.get_nowait()
        queue.put_nowait(text)
