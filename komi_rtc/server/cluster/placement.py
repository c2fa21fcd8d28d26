"""Where a new camera goes: pure functions of this node's view of the cluster (no Redis, no
asyncio), so every rule is tested on its own (tests/test_cluster_placement.py).

A camera, and the station it belongs to, stays on one node, so video and inference never
cross the network. In order:
1. a camera without a station that a station lists (`POST /stations/{id}`, or a station that
   just asked for it, before its node's record said so) goes to that station's node;
2. a camera of a station goes to the node that has the station, or that it is reserved for;
3. otherwise the node with the most analysed capacity left: among the nodes within
   SPARE_TOLERANCE_FPS of the most, the one with fewest cameras, then this one. A node that
   is draining or at its --max-cameras is never chosen; placements of the last
   PLACEMENT_MEMORY_S that its record does not show yet count against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...protocol.cluster_events import NodeInfo
from ..limits import ServerFull

NEW_CAMERA_FPS = 15.0  # what a camera not measured yet needs, before any was measured here
SPARE_TOLERANCE_FPS = 5.0  # spares this close are equal: the node with fewer cameras wins
PLACEMENT_MEMORY_S = 3.0  # a placement counts against its node until its heartbeat shows it


def typical_camera_fps(measured_fps: Sequence[float]) -> float:
    """What a camera not measured yet is expected to send: the median of the cameras
    measured here (one site's cameras are alike), else NEW_CAMERA_FPS. Guessing low
    would send a burst of new cameras to whichever node has the youngest ones."""
    rates = sorted(measured_fps)
    return rates[len(rates) // 2] if rates else NEW_CAMERA_FPS


@dataclass(frozen=True)
class RecentPlacement:
    at: float  # time.monotonic(), seconds
    node: str
    cameras_shown: int  # how many cameras the node's record showed then


class PlacementMemory:
    """The placements of the last PLACEMENT_MEMORY_S: each counts against its node until
    the node's record shows one camera more."""

    def __init__(self) -> None:
        self._placed: list[RecentPlacement] = []

    def recent(self, now: float) -> list[RecentPlacement]:
        """The placements still remembered at `now` (older ones are forgotten)."""
        self._placed = [p for p in self._placed if now - p.at < PLACEMENT_MEMORY_S]
        return list(self._placed)

    def remember(self, now: float, node: NodeInfo) -> None:
        self._placed.append(RecentPlacement(now, node.id, len(node.cameras)))


@dataclass(frozen=True)
class Load:
    """A node as placement sees it: analysed frames a second left, and cameras."""

    spare_fps: float
    cameras: int


@dataclass(frozen=True)
class Placement:
    """Where a camera goes: `node` is this node's own record when here. `loads`: how the
    nodes compared, when capacity decided (empty when a station did). `reserve_station`:
    the station is new: reserve it for `node` first (the first reservation wins)."""

    node: NodeInfo
    loads: Mapping[str, Load]
    reserve_station: bool = False


def wanting_station(
    camera_id: str, here: NodeInfo, view: Mapping[str, NodeInfo], wanted_by: str | None
) -> tuple[bool, NodeInfo]:
    """A station that lists this camera takes it: (True, its node) when one does (this
    node's stations first, then the others', a draining node's never). `wanted_by`: the node
    that just asked for it, before its record (with the station's list) reached this node."""
    if not here.draining and any(camera_id in s["cameras"] for s in here.stations):
        return True, here
    for info in view.values():
        if any(camera_id in s.get("cameras", []) for s in info.stations):
            if not info.draining:
                return True, info
    if wanted_by == here.id and not here.draining:
        return True, here
    host = view.get(wanted_by) if wanted_by else None
    if host is not None and not host.draining:
        return True, host
    return False, here


def node_of_station(station: str, view: Mapping[str, NodeInfo]) -> NodeInfo | None:
    """The other node whose record lists this station."""
    for info in view.values():
        if any(s.get("id") == station for s in info.stations):
            return info
    return None


def station_host(
    station: str, here: NodeInfo, view: Mapping[str, NodeInfo], reserved_for: str | None
) -> tuple[NodeInfo | None, bool]:
    """(where a camera of this station goes, None when capacity decides; whether the
    station is new, so the node capacity chooses reserves it). `reserved_for`: the node
    Redis holds the station's reservation for (read only when no record lists it)."""
    host = node_of_station(station, view)
    if host is None and reserved_for == here.id and not here.draining:
        return here, False  # reserved here by an earlier placement; its camera is on its way
    if host is None and reserved_for:
        host = view.get(reserved_for)
    if host is not None and not host.draining:
        return host, False
    if host is None and any(s["id"] == station for s in here.stations):
        return here, False
    return None, host is None and not reserved_for


def node_loads(
    candidates: Sequence[NodeInfo], recent: Sequence[RecentPlacement], new_camera_fps: float
) -> dict[str, Load]:
    """Each candidate's spare capacity and cameras, counting what its record does not show
    yet: cameras pub/sub told of since, and recent placements sent there, each at
    `new_camera_fps`. A node that has analysed nothing yet is assumed as fast, a worker, as
    the measured ones (its default guess would draw every camera of a burst)."""
    per_worker = sorted(c.capacity_fps / c.workers for c in candidates if c.measured and c.workers)
    typical = per_worker[len(per_worker) // 2] if per_worker else None
    loads = {}
    for info in candidates:
        capacity = info.capacity_fps
        if not info.measured and typical is not None:
            capacity = typical * max(info.workers, 1)
        # placements sent there that its camera list does not show yet
        mine = [p for p in recent if p.node == info.id]
        shown = len(info.cameras) - min((p.cameras_shown for p in mine), default=len(info.cameras))
        pending = max(0, len(mine) - shown)
        unrecorded = max(0, len(info.cameras) - info.recorded_cameras)
        spare = capacity - info.demand_fps - (unrecorded + pending) * new_camera_fps
        loads[info.id] = Load(spare, len(info.cameras) + pending)
    return loads


def least_loaded(
    here: NodeInfo,
    view: Mapping[str, NodeInfo],
    recent: Sequence[RecentPlacement],
    new_camera_fps: float,
) -> tuple[NodeInfo, dict[str, Load]]:
    """The node with the most capacity left (fewest cameras among those within
    SPARE_TOLERANCE_FPS of the most, then this one), and how they all compared.
    ServerFull when every node is draining or full."""
    candidates = [c for c in (here, *view.values()) if not c.draining and not c.full]
    if not candidates:
        raise ServerFull("every node of the cluster is full or draining")
    loads = node_loads(candidates, recent, new_camera_fps)
    most = max(load.spare_fps for load in loads.values())
    best = min(
        (c for c in candidates if loads[c.id].spare_fps >= most - SPARE_TOLERANCE_FPS),
        key=lambda c: (loads[c.id].cameras, -loads[c.id].spare_fps, c.id != here.id),
    )
    return best, loads


def place(
    camera_id: str | None,
    station: str | None,
    here: NodeInfo,
    view: Mapping[str, NodeInfo],
    *,
    wanted_by: str | None = None,
    station_reserved_for: str | None = None,
    recent: Sequence[RecentPlacement] = (),
    new_camera_fps: float = NEW_CAMERA_FPS,
) -> Placement:
    """Where a new camera goes (see the module's docstring). `here`: this node's record;
    `view`: the other live nodes; `wanted_by` and `station_reserved_for`: what Redis said
    (the node that asked for this camera, the node the station is reserved for)."""
    if station is None and camera_id is not None:
        found, wanting = wanting_station(camera_id, here, view, wanted_by)
        if found:
            return Placement(wanting, {})
    new_station = False
    if station is not None:
        host, new_station = station_host(station, here, view, station_reserved_for)
        if host is not None:
            return Placement(host, {})
    best, loads = least_loaded(here, view, recent, new_camera_fps)
    return Placement(best, loads, reserve_station=new_station)


def reservation_holder(
    reserved_for: str | None, here: NodeInfo, view: Mapping[str, NodeInfo]
) -> NodeInfo | None:
    """Where a new station's camera goes when another placement reserved the station first
    (`reserved_for`): that node; None when it is gone or draining (the camera goes where
    capacity chose)."""
    host = here if reserved_for == here.id else view.get(str(reserved_for))
    if host is None or host.draining:
        return None
    return host
