"""Where a cluster puts a new camera, rule by rule, without Redis or a server: placement is
pure functions of this node's record and its view of the others
(`komi_rtc/server/cluster/placement.py`). Also the typed shapes those records and the
nodes' events travel in (`komi_rtc/protocol/cluster_events.py`)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from komi_rtc.protocol.cluster_events import (
    CameraEvent,
    CamerasChanged,
    NodeDraining,
    NodeInfo,
    NodeLeft,
    TokenRevoked,
    event_from_wire,
    relayed_status_update,
)
from komi_rtc.protocol.messages import StatusUpdate, encode
from komi_rtc.server.cluster.placement import (
    NEW_CAMERA_FPS,
    PLACEMENT_MEMORY_S,
    SPARE_TOLERANCE_FPS,
    PlacementMemory,
    least_loaded,
    place,
    reservation_holder,
    typical_camera_fps,
)
from komi_rtc.server.limits import ServerFull

HERE = "node_a"


def node(
    node_id: str,
    spare_fps: float = 100.0,
    cameras: int = 0,
    *,
    capacity_fps: float = 200.0,
    workers: int = 1,
    measured: bool = True,
    draining: bool = False,
    full: bool = False,
    stations: tuple[dict[str, object], ...] = (),
) -> NodeInfo:
    """A node as its record describes it, with `spare_fps` of its capacity left."""
    return NodeInfo(
        id=node_id,
        url=f"http://{node_id}:8000",
        capacity_fps=capacity_fps,
        demand_fps=capacity_fps - spare_fps,
        cameras=tuple(f"{node_id}_cam{i}" for i in range(cameras)),
        stations=stations,
        draining=draining,
        workers=workers,
        measured=measured,
        full=full,
        recorded_cameras=cameras,
    )


def view_of(*nodes: NodeInfo) -> dict[str, NodeInfo]:
    return {n.id: n for n in nodes}


def station(station_id: str, *cameras: str) -> dict[str, object]:
    return {"id": station_id, "cameras": list(cameras)}


# ------------------------------------------------------------ capacity


def test_the_node_with_most_capacity_left_gets_a_new_camera() -> None:
    here = node(HERE, spare_fps=50)
    view = view_of(node("node_b", spare_fps=150), node("node_c", spare_fps=90))
    assert place("cam_1", None, here, view).node.id == "node_b"


def test_this_node_keeps_a_camera_when_it_has_most_left() -> None:
    here = node(HERE, spare_fps=150)
    placement = place("cam_1", None, here, view_of(node("node_b", spare_fps=50)))
    assert placement.node is here
    assert set(placement.loads) == {HERE, "node_b"}


def test_spares_within_the_tolerance_are_equal_and_fewer_cameras_win() -> None:
    here = node(HERE, spare_fps=100, cameras=3)
    close = node("node_b", spare_fps=100 - SPARE_TOLERANCE_FPS + 0.5, cameras=1)
    assert place("cam_1", None, here, view_of(close)).node.id == "node_b"


def test_a_spare_beyond_the_tolerance_wins_over_fewer_cameras() -> None:
    here = node(HERE, spare_fps=100, cameras=3)
    far = node("node_b", spare_fps=100 - SPARE_TOLERANCE_FPS - 1, cameras=1)
    assert place("cam_1", None, here, view_of(far)).node is here


def test_equal_cameras_within_the_tolerance_go_to_the_larger_spare_then_here() -> None:
    here = node(HERE, spare_fps=100, cameras=1)
    assert place("cam_1", None, here, view_of(node("node_b", 102, 1))).node.id == "node_b"
    assert place("cam_1", None, here, view_of(node("node_b", 100, 1))).node is here


def test_a_draining_node_is_never_chosen() -> None:
    here = node(HERE, spare_fps=10)
    draining = node("node_b", spare_fps=500, draining=True)
    assert place("cam_1", None, here, view_of(draining)).node is here
    assert place("cam_1", None, node(HERE, draining=True), view_of(node("node_b", 1))).node.id == (
        "node_b"
    )


def test_a_node_at_its_max_cameras_is_never_chosen() -> None:
    here = node(HERE, spare_fps=10)
    assert place("cam_1", None, here, view_of(node("node_b", 500, full=True))).node is here


def test_every_node_full_or_draining_refuses_the_camera() -> None:
    here = node(HERE, full=True)
    with pytest.raises(ServerFull):
        place("cam_1", None, here, view_of(node("node_b", draining=True)))


def test_recent_placements_count_against_their_node_until_its_record_shows_them() -> None:
    here = node(HERE, spare_fps=100)
    busy_before = node("node_b", spare_fps=100 + NEW_CAMERA_FPS - 1)
    memory = PlacementMemory()
    # a burst: the first camera goes to node_b; its record does not show it yet
    first = place("cam_1", None, here, view_of(busy_before), recent=memory.recent(0.0))
    assert first.node.id == "node_b"
    memory.remember(0.0, first.node)
    second = place("cam_2", None, here, view_of(busy_before), recent=memory.recent(0.5))
    assert second.loads["node_b"].cameras == 1
    assert second.loads["node_b"].spare_fps == pytest.approx(busy_before.spare_fps - NEW_CAMERA_FPS)
    assert second.node is here  # spares now within the tolerance: fewer cameras here
    assert place("cam_2", None, here, view_of(busy_before)).node.id == "node_b"  # forgetful
    # its next record shows the camera (and its demand): the placement no longer counts
    shown = replace(busy_before, cameras=("cam_1",), recorded_cameras=1)
    later = place("cam_3", None, here, view_of(shown), recent=memory.recent(1.0))
    assert later.loads["node_b"].cameras == 1
    assert later.loads["node_b"].spare_fps == pytest.approx(shown.spare_fps)


def test_placements_are_forgotten_after_the_memory_span() -> None:
    memory = PlacementMemory()
    memory.remember(10.0, node("node_b"))
    assert len(memory.recent(10.0 + PLACEMENT_MEMORY_S - 0.1)) == 1
    assert memory.recent(10.0 + PLACEMENT_MEMORY_S) == []


def test_cameras_pub_sub_told_of_count_against_their_node_at_the_new_camera_rate() -> None:
    told = replace(node("node_b", 100), cameras=("x", "y"))  # its record counted none
    _, loads = least_loaded(node(HERE), view_of(told), [], new_camera_fps=12.0)
    assert loads["node_b"].spare_fps == pytest.approx(100 - 2 * 12.0)
    assert loads["node_b"].cameras == 2


def test_a_node_not_measured_yet_is_assumed_as_fast_a_worker_as_the_measured_ones() -> None:
    here = node(HERE, spare_fps=100, capacity_fps=200, workers=2)  # 100 fps a worker
    guessed = node("node_b", spare_fps=10, capacity_fps=10, workers=4, measured=False)
    _, loads = least_loaded(here, view_of(guessed), [], NEW_CAMERA_FPS)
    # 4 workers at 100 fps each, less its demand (0)
    assert loads["node_b"].spare_fps == pytest.approx(400.0)
    assert place("cam_1", None, here, view_of(guessed)).node.id == "node_b"


def test_a_camera_not_measured_yet_is_expected_to_send_the_median_rate_here() -> None:
    assert typical_camera_fps([]) == NEW_CAMERA_FPS
    assert typical_camera_fps([30.0, 10.0, 20.0]) == 20.0
    assert typical_camera_fps([5.0, 25.0]) == 25.0


# ------------------------------------------------------------ stations


def test_a_camera_of_a_station_goes_to_the_station_s_node_however_loaded() -> None:
    here = node(HERE, spare_fps=500)
    host = node("node_b", spare_fps=1, stations=(station("st_1", "cam_x"),))
    placement = place("cam_2", "st_1", here, view_of(host))
    assert placement.node.id == "node_b"
    assert not placement.loads and not placement.reserve_station


def test_a_station_here_keeps_its_cameras_here() -> None:
    here = node(HERE, spare_fps=1, stations=(station("st_1"),))
    assert place("cam_2", "st_1", here, view_of(node("node_b", 500))).node is here


def test_a_station_reserved_for_a_node_sends_its_cameras_there() -> None:
    here = node(HERE, spare_fps=500)
    view = view_of(node("node_b", spare_fps=1))
    assert place("c", "st_1", here, view, station_reserved_for="node_b").node.id == "node_b"
    assert place("c", "st_1", node(HERE, 1), view, station_reserved_for=HERE).node.id == HERE


def test_a_new_station_goes_where_capacity_says_and_is_reserved_there() -> None:
    here = node(HERE, spare_fps=10)
    placement = place("cam_1", "st_new", here, view_of(node("node_b", spare_fps=300)))
    assert placement.node.id == "node_b" and placement.reserve_station


def test_a_draining_station_node_loses_its_new_cameras_to_capacity() -> None:
    here = node(HERE, spare_fps=100)
    host = node("node_b", spare_fps=900, draining=True, stations=(station("st_1"),))
    placement = place("cam_1", "st_1", here, view_of(host, node("node_c", 50)))
    assert placement.node is here
    assert not placement.reserve_station  # the station exists: nothing to reserve


def test_a_reservation_for_a_node_that_is_gone_leaves_it_to_capacity_unreserved() -> None:
    placement = place(
        "c", "st_1", node(HERE, 10), view_of(node("node_b", 90)), station_reserved_for="node_gone"
    )
    assert placement.node.id == "node_b" and not placement.reserve_station


def test_a_camera_a_station_lists_goes_to_that_station_s_node() -> None:
    here = node(HERE, spare_fps=500)
    host = node("node_b", spare_fps=1, stations=(station("st_1", "cam_1"),))
    assert place("cam_1", None, here, view_of(host)).node.id == "node_b"
    mine = node(HERE, spare_fps=1, stations=(station("st_1", "cam_1"),))
    assert place("cam_1", None, mine, view_of(node("node_b", 500))).node is mine


def test_a_camera_just_asked_for_goes_to_the_node_that_asked() -> None:
    here = node(HERE, spare_fps=500)
    view = view_of(node("node_b", spare_fps=1))
    assert place("cam_1", None, here, view, wanted_by="node_b").node.id == "node_b"
    assert place("cam_1", None, node(HERE, 1), view, wanted_by=HERE).node.id == HERE


def test_a_draining_node_s_station_does_not_take_the_camera() -> None:
    here = node(HERE, spare_fps=500)
    host = node("node_b", spare_fps=1, draining=True, stations=(station("st_1", "cam_1"),))
    assert place("cam_1", None, here, view_of(host), wanted_by="node_b").node is here


def test_a_lost_reservation_sends_the_camera_to_the_winner_unless_it_is_gone() -> None:
    here, other = node(HERE), node("node_b")
    assert reservation_holder("node_b", here, view_of(other)) is other
    assert reservation_holder(HERE, here, view_of(other)) is here
    assert reservation_holder("node_gone", here, view_of(other)) is None
    draining = node("node_b", draining=True)
    assert reservation_holder("node_b", here, view_of(draining)) is None


# ------------------------------------------------------------ the shapes they travel in


def test_a_node_record_reads_back_as_written() -> None:
    info = node("node_b", 40, 2, stations=(station("st_1", "node_b_cam0"),))
    wire = json.loads(json.dumps(info.to_wire()))
    assert wire["spare_fps"] == 40.0
    assert NodeInfo.from_wire({**wire, "at": 1.0, "mac": "x"}) == info


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "http://x"},
        {"id": "n", "url": "http://x", "cameras": "cam_1"},
        {"id": "n", "url": "http://x", "capacity_fps": "a lot"},
        {"id": "n", "url": "http://x", "stations": [{"cameras": []}]},
        {"id": "n", "url": "http://x", "workers": 1.5},
    ],
)
def test_a_malformed_node_record_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NodeInfo.from_wire(bad)


def test_every_event_reads_back_as_the_typed_value_it_was() -> None:
    events = [
        CamerasChanged("node_b", "http://b", ("cam_1", "cam_2")),
        CameraEvent("node_b", "cam_1", '{"type": "rep_completed"}'),
        NodeLeft("node_b"),
        NodeDraining("node_b", True),
        TokenRevoked("node_b", "tok_1", 1234.5),
    ]
    for event in events:
        wire = json.loads(json.dumps(event.to_wire()))
        assert event_from_wire({**wire, "at": 1.0, "mac": "x"}) == event


def test_an_unknown_event_type_is_ignored_and_a_malformed_one_refused() -> None:
    assert event_from_wire({"type": "from_a_newer_node", "node": "node_b"}) is None
    with pytest.raises(ValueError):
        event_from_wire({"type": "revoked", "node": "node_b"})  # no token_id
    with pytest.raises(ValueError):
        event_from_wire({"type": "cameras"})  # no node


def test_the_status_relay_passes_on_status_updates_only() -> None:
    update = StatusUpdate("cam_1", 12.5, {"pose": [], "timestamp": 12.5}, {"reps": 3})
    assert relayed_status_update(encode(update)) == update
    assert relayed_status_update('{"type": "cameras_list", "cameras": []}') is None
    assert relayed_status_update('{"camera_id": "x", "type": "status_update"}') is None
    assert relayed_status_update("not json") is None
