"""A cluster of three real nodes (server processes) on one machine, with a real Redis and a
real PostgreSQL: cameras spread by load, any node answers for all, a monitor on one node
watches a camera on another, tokens work everywhere, a killed node's cameras move, and a
drained node moves its cameras without losing a rep.

The tests share one cluster and run in file order: the last two kill and drain nodes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from auth import ADMIN_TOKEN, AUTH_HEADERS
from cluster_nodes import Cluster, Node, placed, placement, wait_joined
from contract_client import PersonTrack, connect_camera, connect_monitor
from databases import fresh_database, redis_server
from harness import free_port, wait_for, wait_for_blocking
from whip_client import whep_player, whip_camera

from komi_rtc.camera.peer import CameraPeer, CapturedTrack
from komi_rtc.media.video_sources import open_source

pytestmark = pytest.mark.databases  # PostgreSQL and Redis

NODES = ("node_a", "node_b", "node_c")


@pytest.fixture(scope="module")
def cluster(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    db_url = fresh_database(postgres_url, "komi_cluster")
    with redis_server() as redis_url:
        nodes = {n: Node(n, redis_url, db_url, workdir) for n in NODES}
        running = Cluster(nodes, redis_url, db_url)
        try:
            wait_joined(nodes)
            yield running
        finally:
            for node in nodes.values():
                node.stop()


class Camera:
    """A camera peer streaming the demo person through an entry node, running as a task."""

    def __init__(
        self,
        entry: Node,
        camera_id: str,
        fps: float,
        size: tuple[int, int] = (320, 240),
        token: str = ADMIN_TOKEN,
        **options: Any,
    ) -> None:
        self.peer = CameraPeer(
            entry.url, camera_id, open_source("demo", *size, fps), fps=fps, token=token, **options
        )
        self.peer.messages = asyncio.Queue()
        self.task = asyncio.create_task(self.peer.run())

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.peer.close()


@pytest.fixture
async def cameras() -> Any:
    started: list[Camera] = []

    def start(*args: Any, **kwargs: Any) -> Camera:
        camera = Camera(*args, **kwargs)
        started.append(camera)
        return camera

    yield start
    for camera in started:
        await camera.close()


async def test_cameras_go_to_the_node_with_most_capacity_left_and_any_node_lists_all(
    cluster: Cluster, cameras: Any
) -> None:
    entry = cluster["node_a"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        # one camera sending 24 fps, then light ones at 4 fps, all through node_a
        heavy = cameras(entry, "cam_heavy", fps=24)
        await wait_for(lambda: _has(placement(http, entry), "cam_heavy"), 30, "cam_heavy placed")
        heavy_node = (await placement(http, entry))["cam_heavy"]
        await wait_for(lambda: _measured(heavy.peer, 40), 30, "cam_heavy streaming")
        for i in range(3):
            light = cameras(entry, f"cam_light{i}", fps=4)
            await wait_for(
                lambda i=i: _has(placement(http, entry), f"cam_light{i}"), 30, "light placed"
            )
            await wait_for(lambda light=light: _measured(light.peer, 8), 30, "light streaming")
        where = await placement(http, entry)
        # by capacity left, not by count: the heavy camera's node takes no light one while
        # the others have room, though after three it hosts fewer cameras than one of them
        assert [c for c, n in where.items() if n == heavy_node] == ["cam_heavy"], where
        per_node = sorted(list(where.values()).count(n) for n in NODES if n != heavy_node)
        assert per_node == [1, 2], where

        everything = sorted(where)
        for node in cluster.nodes.values():
            async with http.get(f"{node.url}/cameras") as response:
                assert (await response.json())["cameras"] == everything
            async with http.ws_connect(f"{node.url}/ws/monitor") as ws:
                first = json.loads((await ws.receive(timeout=10)).data)
                assert first == {"type": "cameras_list", "cameras": everything}
                # status updates of every node's cameras reach this node's watchers
                statuses: set[str] = set()
                async with asyncio.timeout(20):
                    while statuses != set(everything):
                        message = json.loads((await ws.receive()).data)
                        if message.get("type") == "status_update":
                            statuses.add(message["camera_id"])


async def _has(where: Awaitable[dict[str, str]], camera_id: str) -> bool:
    return camera_id in await where


async def _measured(peer: CameraPeer, results: int) -> bool:
    return peer.status.results >= results


async def test_a_monitor_on_one_node_watches_a_camera_on_another(
    cluster: Cluster, cameras: Any
) -> None:
    a, c = cluster["node_a"], cluster["node_c"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        camera = cameras(c, "cam_watched", fps=8, exercise="squat")
        await wait_for(lambda: _measured(camera.peer, 5), 30, "cam_watched streaming")
        host = (await placed(http, a, "cam_watched"))["cam_watched"]
        far = next(n for n in cluster.nodes.values() if n.id != host)
        # the monitor's offer goes to `far`; its answer comes from the camera's node
        monitor = await connect_monitor(far.url, "cam_watched")
        try:
            message = await monitor.next_message("frame_processed", timeout=20)
            assert message["camera_id"] == "cam_watched"
            await wait_for(lambda: _frames(monitor, 3), 20, "forwarded video")
            # REST about the camera works on any node (passed to its node)
            async with http.get(f"{far.url}/get-image/cam_watched") as response:
                assert response.status == 200 and response.content_type == "image/jpeg"
                assert response.headers["X-Komi-Node"] == host
            # a client posing as a node (a forged X-Komi-Forwarded) is refused
            forged = {"X-Komi-Forwarded": f"{host}:{int(time.time())}:00ff", "X-Komi-Client": "1"}
            async with http.get(f"{far.url}/get-image/cam_watched", headers=forged) as response:
                assert response.status == 403
                assert "signature" in (await response.json())["error"]
            async with http.get(f"{far.url}/latest_image/cam_watched") as response:
                body = await response.json()
                assert body["camera_id"] == "cam_watched" and body["image_data"]
            async with http.ws_connect(f"{far.url}/ws/monitor") as ws:
                # an exercise change made on a third node reaches this node's watchers
                third = next(n for n in cluster.nodes.values() if n.id not in (host, far.id))
                async with http.post(
                    f"{third.url}/cameras/cam_watched/exercise", json={"exercise": "lunge_left"}
                ) as response:
                    assert response.status == 200, await response.text()
                    assert (await response.json())["exercise"] == "lunge_left"
                async with asyncio.timeout(15):
                    while True:
                        message = json.loads((await ws.receive()).data)
                        if message.get("type") == "exercise_set":
                            assert message["camera_id"] == "cam_watched"
                            assert message["exercise"] == "lunge_left"
                            break
            # the monitor on the camera's node hears it too, on its own channel
            changed = await monitor.next_message("exercise_set")
            assert changed["exercise"] == "lunge_left"
            async with http.get(f"{far.url}/get-image/cam_nowhere") as response:
                assert response.status == 404
        finally:
            await monitor.close()


async def _frames(monitor: Any, count: int) -> bool:
    return monitor.frame_count >= count


async def test_whip_cameras_are_placed_and_their_sessions_answer_through_any_node(
    cluster: Cluster,
) -> None:
    """A WHIP camera is placed as an offer's camera (here: with its station's first camera,
    on another node than the one asked); the 201's Location and ETag come back through the
    node asked, and the session answers PATCH/DELETE there; WHEP works through any node."""
    a = cluster["node_a"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        first = await whip_camera(a.url, "whip_c1", PersonTrack(fps=8), query="?station=whip_st")
        try:
            host = (await placed(http, a, "whip_c1"))["whip_c1"]
            other = next(n for n in cluster.nodes.values() if n.id != host)
            second = await whip_camera(
                other.url, "whip_c2", PersonTrack(fps=8), query="?station=whip_st"
            )
            try:
                assert second.headers["X-Komi-Node"] == host  # passed on to the station's node
                assert second.location.startswith("/whip/whip_c2/") and second.headers["ETag"]
                assert (await placed(http, other, "whip_c2"))["whip_c2"] == host
                player = await whep_player(other.url, "whip_c2")
                try:
                    assert player.headers["X-Komi-Node"] == host
                    await wait_for(
                        lambda: _frames(player, 5), 20, "WHEP video through another node"
                    )
                    assert (await player.request("DELETE"))[0] == 200
                finally:
                    await player.close()
                status, _, _ = await second.request(
                    "PATCH",
                    "a=end-of-candidates\r\n",
                    **{"Content-Type": "application/trickle-ice-sdpfrag"},
                )
                assert status == 204
                assert (await second.request("DELETE"))[0] == 200  # through `other`

                async def gone() -> bool:
                    return "whip_c2" not in await placement(http, other)

                await wait_for(gone, 10, "whip_c2 gone from the cluster")
            finally:
                await second.close()
        finally:
            await first.close()


async def test_tokens_minted_on_one_node_work_and_are_revoked_on_every_node(
    cluster: Cluster, cameras: Any
) -> None:
    a, b, c = (cluster[n] for n in NODES)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{a.url}/tokens", json={"role": "monitor"}) as response:
            minted = await response.json()
        token = minted["token"]
        for node in (b, c):
            async with aiohttp.ClientSession() as anonymous:
                headers = {"Authorization": f"Bearer {token}"}
                async with anonymous.get(f"{node.url}/cameras", headers=headers) as response:
                    assert response.status == 200
        async with http.post(f"{b.url}/tokens", json={"role": "camera"}) as response:
            camera_token = (await response.json())["token"]
        camera = cameras(a, "cam_token", fps=5, token=camera_token)
        await wait_for(lambda: _measured(camera.peer, 3), 30, "camera with a minted token")
        async with aiohttp.ClientSession() as anonymous:
            headers = {"Authorization": f"Bearer {token}"}
            async with anonymous.ws_connect(f"{c.url}/ws/monitor", headers=headers) as ws:
                await ws.receive(timeout=10)
                async with http.delete(f"{a.url}/tokens/{minted['token_id']}") as response:
                    assert response.status == 200
                # node_c heard of it over pub/sub and closed the WebSocket the token opened
                async with asyncio.timeout(10):
                    while not ws.closed:
                        await ws.receive()
            for node in (a, b, c):
                async with anonymous.get(f"{node.url}/cameras", headers=headers) as response:
                    assert response.status == 401


async def test_cameras_of_a_new_station_offered_at_once_through_two_nodes_share_a_node(
    cluster: Cluster,
) -> None:
    """Each entry node would place the first camera it sees on itself (equal load, its own
    node wins a tie): the first placement's reservation in Redis sends the other there."""
    b, c = cluster["node_b"], cluster["node_c"]
    peers = await asyncio.gather(
        *(
            connect_camera(
                node.url,
                CapturedTrack(open_source("demo", 160, 120, 10), 10),
                camera_id,
                station="st_burst",
            )
            for node, camera_id in ((b, "cam_st_1"), (c, "cam_st_2"))
        )
    )
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            where = await placed(http, b, "cam_st_1", "cam_st_2")
            assert where["cam_st_1"] == where["cam_st_2"], where

            async def both_in_station() -> bool:
                async with http.get(f"{c.url}/stations") as response:
                    listed = (await response.json())["stations"]
                return any(
                    s["id"] == "st_burst" and sorted(s["streaming"]) == ["cam_st_1", "cam_st_2"]
                    for s in listed
                )

            await wait_for(both_in_station, 15, "one station streaming both cameras")
    finally:
        for peer in peers:
            await peer.close()


async def test_a_persons_links_work_through_any_node(cluster: Cluster, cameras: Any) -> None:
    """A camera link made for lee (on one node) ties its camera to her wherever it is placed;
    her own history link reads her sets through every node, the camera link through none."""
    a, b = cluster["node_a"], cluster["node_b"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        body = {"role": "camera", "camera_id": "cam_bound", "person": "lee"}
        async with http.post(f"{a.url}/tokens", json=body) as response:
            assert response.status == 200, await response.text()
            token = (await response.json())["token"]
        async with http.post(f"{b.url}/tokens", json={"role": "person", "person": "lee"}) as r:
            assert r.status == 200, await r.text()
            lee = (await r.json())["token"]
        camera = cameras(a, "cam_bound", fps=5, token=token)
        await wait_for(lambda: _measured(camera.peer, 3), 30, "bound camera streaming")
        host = (await placed(http, a, "cam_bound"))["cam_bound"]
        async with http.post(f"{a.url}/cameras/cam_bound/exercise", json={"exercise": "squat"}):
            pass
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {lee}"}) as own:
        for node in cluster.nodes.values():

            async def recorded(node: Any = node) -> bool:
                async with own.get(f"{node.url}/people/lee/sets") as response:
                    assert response.status == 200, (node.id, host, await response.text())
                    return [s["camera_id"] for s in (await response.json())["sets"]] == [
                        "cam_bound"
                    ]

            await wait_for(recorded, 15, f"lee's set seen through {node.id}")
            async with own.get(f"{node.url}/people/someone_else/sets") as response:
                assert response.status == 403, (node.id, host)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as bound:
        for node in cluster.nodes.values():
            async with bound.get(f"{node.url}/people/lee/sets") as response:
                assert response.status == 403, (node.id, host)


async def test_a_station_named_by_rest_gathers_its_cameras_from_other_nodes(
    cluster: Cluster, cameras: Any
) -> None:
    """`POST /stations/{id}` for two cameras on two nodes: the station starts on the node of
    its first camera, which asks the other node to let its camera go; reconnecting, it is
    placed with the station, and the station analyses both."""
    a, b, c = cluster["node_a"], cluster["node_b"], cluster["node_c"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        # the second camera goes to a node without one (spares alike: fewest cameras wins)
        first = cameras(b, "cam_pull_1", fps=8, size=(160, 120))
        await wait_for(lambda: _measured(first.peer, 3), 30, "cam_pull_1 streaming")
        second = cameras(c, "cam_pull_2", fps=8, size=(160, 120))
        await wait_for(lambda: _measured(second.peer, 3), 30, "cam_pull_2 streaming")
        where = await placed(http, a, "cam_pull_1", "cam_pull_2")
        assert where["cam_pull_1"] != where["cam_pull_2"], f"need two nodes to begin: {where}"
        host = where["cam_pull_1"]
        # asked through the node hosting neither (earlier tests' cameras decide where the
        # second one lands): one camera each, so the first listed camera's node wins
        entry = next(n for n in (a, b, c) if n.id not in where.values())

        body = {"cameras": ["cam_pull_1", "cam_pull_2"]}
        async with http.post(f"{entry.url}/stations/st_pull", json=body) as response:
            assert response.status == 200, await response.text()
            # started where cam_pull_1 streams: passed on there
            assert response.headers.get("X-Komi-Node", entry.id) == host, where
            answer = await response.json()
        assert answer["moving"] == ["cam_pull_2"], (where, answer)
        assert answer["cameras"] == ["cam_pull_1", "cam_pull_2"]

        async def gathered() -> bool:
            async with http.get(f"{a.url}/stations") as response:
                listed = (await response.json())["stations"]
            return any(
                s["id"] == "st_pull" and s["streaming"] == ["cam_pull_1", "cam_pull_2"]
                for s in listed
            )

        await wait_for(gathered, 30, "station st_pull streaming both cameras on one node")

        async def both_on_host() -> dict[str, str] | None:
            # node a hears of the move with the station's node's next heartbeat
            where = await placement(http, a)
            return where if where.get("cam_pull_1") == where.get("cam_pull_2") == host else None

        await wait_for(both_on_host, 10, f"{a.id} placing both cameras on {host}")
        # the moved camera streams on through the station's node
        await wait_for(
            lambda n=second.peer.status.results: _measured(second.peer, n + 5), 20, "results"
        )
        # only a node may ask another to let a camera go
        async with http.post(
            f"{c.url}/cluster/cameras/cam_pull_1/release", json={"station": "x"}
        ) as response:
            assert response.status == 403, await response.text()
            assert "error" in await response.json()


async def _sets(http: aiohttp.ClientSession, node: Node, person: str) -> list[dict[str, Any]]:
    async with http.get(f"{node.url}/people/{person}/sets") as response:
        if response.status == 404:
            return []
        assert response.status == 200, await response.text()
        return list((await response.json())["sets"])


async def test_a_killed_node_s_cameras_move_to_live_nodes_and_keep_their_reps(
    cluster: Cluster, cameras: Any
) -> None:
    entry = cluster["node_a"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        moved = [
            cameras(
                entry, f"cam_kill{i}", fps=10, size=(640, 480), exercise="squat", person=f"kim{i}"
            )
            for i in range(2)
        ]
        for camera in moved:
            await wait_for(lambda camera=camera: _measured(camera.peer, 3), 30, "streaming")
        where = await placed(http, entry, "cam_kill0", "cam_kill1")
        victim = cluster[where["cam_kill0"]]
        survivor = next(n for n in cluster.nodes.values() if n.alive and n is not victim)
        # the entry node (the browser's page address): cam_kill0's dies with its node, so it
        # must reconnect through the other nodes its offer's answer listed; cam_kill1's lives
        moved[0].peer.server = victim.url
        moved[1].peer.server = survivor.url
        assert sorted(moved[0].peer.cluster_nodes) == sorted(n.url for n in cluster.nodes.values())
        on_victim = [c.peer for c in moved if where[c.peer.camera_id] == victim.id]
        # a rep of a camera on the victim recorded before it dies
        await wait_for(lambda: _reps_recorded(http, survivor, "kim0", 1), 60, "a rep recorded")
        before = {p: await _rep_total(http, survivor, p) for p in ("kim0", "kim1")}
        killed_wall, killed_at = time.time(), time.monotonic()
        victim.process.kill()
        victim.process.wait()
        await wait_for(
            lambda: _all_on(http, survivor, ["cam_kill0", "cam_kill1"], _live(cluster)),
            30,
            "cameras back on live nodes",
        )
        print(
            f"the killed node's cameras were placed again after {time.monotonic() - killed_at:.1f} s"
        )
        for peer in on_victim:
            await wait_for(
                lambda peer=peer, n=peer.status.results: _measured(peer, n + 5), 20, "results"
            )
        async with http.get(f"{survivor.url}/cluster") as response:
            assert victim.id not in [n["id"] for n in (await response.json())["nodes"]]
        # every rep recorded before the kill is still there, and a live node ended the dead
        # node's open sets (they end at their last rep)
        for person, reps in before.items():
            assert await _rep_total(http, survivor, person) >= reps
        for peer in on_victim:
            await wait_for(
                lambda peer=peer: _old_sets_ended(http, survivor, peer.person, killed_wall),
                15,
                "the dead node's sets ended",
            )
            # the set the camera began on its new node (often before the death was seen)
            sets = await _sets(http, survivor, peer.person)
            newest = max(sets, key=lambda s: s["started_at"])
            assert newest["started_at"] >= killed_wall and newest["ended_at"] is None, sets


def _live(cluster: Cluster) -> set[str]:
    return {n.id for n in cluster.nodes.values() if n.alive}


async def _rep_total(http: aiohttp.ClientSession, node: Node, person: str) -> int:
    return sum(s["reps"] for s in await _sets(http, node, person))


async def _old_sets_ended(
    http: aiohttp.ClientSession, node: Node, person: str, before: float
) -> bool:
    old = [s for s in await _sets(http, node, person) if s["started_at"] < before]
    return bool(old) and all(s["ended_at"] is not None for s in old)


async def _all_on(
    http: aiohttp.ClientSession, node: Node, camera_ids: list[str], nodes: set[str]
) -> bool:
    where = await placement(http, node)
    return all(where.get(c) in nodes for c in camera_ids)


async def test_a_drained_node_moves_its_cameras_without_losing_a_rep(
    cluster: Cluster, cameras: Any
) -> None:
    live = [n for n in cluster.nodes.values() if n.alive]
    assert len(live) >= 2, "the kill test left fewer than two nodes"
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        camera = cameras(
            live[0], "cam_drain", fps=10, size=(640, 480), exercise="squat", person="dana"
        )
        await wait_for(lambda: _measured(camera.peer, 3), 30, "cam_drain streaming")
        drained = cluster[(await placed(http, live[0], "cam_drain"))["cam_drain"]]
        entry = next(n for n in live if n is not drained)
        camera.peer.server = entry.url
        seen_reps = 0

        async def reps_seen(at_least: int) -> bool:
            nonlocal seen_reps
            while not camera.peer.messages.empty():
                if camera.peer.messages.get_nowait().get("type") == "rep_completed":
                    seen_reps += 1
            return seen_reps >= at_least

        await wait_for(lambda: reps_seen(2), 60, "reps before draining")
        drained.process.send_signal(signal.SIGTERM)
        await wait_for(
            lambda: _all_on(http, entry, ["cam_drain"], {entry.id}), 30, "moved to a live node"
        )
        moved_at = seen_reps
        await wait_for(lambda: reps_seen(moved_at + 2), 60, "reps after the move")
        assert drained.process.wait(timeout=30) == 0, cluster.logs()
        assert "draining: moving 1 camera(s)" in drained.log.read_text()
        # every rep the camera was told of is recorded, across both nodes' sets; the set on
        # the drained node was ended by the move, not left open
        await wait_for(lambda: _reps_recorded(http, entry, "dana", seen_reps), 15, "reps recorded")
        sets = await _sets(http, entry, "dana")
        assert {s["camera_id"] for s in sets} == {"cam_drain"} and len(sets) >= 2
        first = sets[-1]  # newest first: the set on the drained node is the last
        assert first["ended_at"] is not None and first["reps"] >= 2, sets


async def _reps_recorded(http: aiohttp.ClientSession, node: Node, person: str, reps: int) -> bool:
    return await _rep_total(http, node, person) >= reps


def _start_redis(args: list[str], port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A redis-server (or Sentinel) on a loopback port, once it answers."""
    import redis

    process = subprocess.Popen(
        ["redis-server", *args],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

    def answers() -> bool:
        assert process.poll() is None, f"redis-server {args} exited at start"
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for_blocking(answers, 10, f"redis-server {args} answering")
    finally:
        client.close()
    return process


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[tuple[dict[str, Node], dict[str, Any]]]:
    """A Redis master, its replica and a Sentinel watching them, and two nodes that reach
    Redis only through the Sentinel."""
    import redis

    ports = {name: free_port() for name in ("master", "replica", "sentinel")}
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    processes = {
        "master": _start_redis(["--port", str(ports["master"]), *common], ports["master"], tmp_path)
    }
    processes["replica"] = _start_redis(
        ["--port", str(ports["replica"]), *common]
        + ["--replicaof", "127.0.0.1", str(ports["master"])],
        ports["replica"],
        tmp_path,
    )
    config = tmp_path / "sentinel.conf"  # Sentinel rewrites its own configuration
    config.write_text(
        f"port {ports['sentinel']}\nbind 127.0.0.1\n"
        f"sentinel monitor komi 127.0.0.1 {ports['master']} 1\n"
        "sentinel down-after-milliseconds komi 1000\n"
        "sentinel failover-timeout komi 5000\n"
    )
    processes["sentinel"] = _start_redis([str(config), "--sentinel"], ports["sentinel"], tmp_path)
    nodes: dict[str, Node] = {}
    try:
        sentinel = redis.Redis(host="127.0.0.1", port=ports["sentinel"], decode_responses=True)

        def replica_known() -> bool:  # the Sentinel knows the replica it would promote
            return any(
                r.get("flags") == "slave" and r.get("master-link-status") == "ok"
                for r in sentinel.sentinel_slaves("komi")
            )

        wait_for_blocking(replica_known, 30, "the Sentinel seeing the replica", interval=0.2)
        sentinel.close()
        url = f"redis+sentinel://127.0.0.1:{ports['sentinel']}/komi"
        for node_id in ("node_s1", "node_s2"):
            db = f"sqlite:///{tmp_path / node_id}.sqlite3"
            nodes[node_id] = Node(node_id, url, db, tmp_path)
        wait_joined(nodes)
        yield nodes, {"ports": ports, "processes": processes}
    finally:
        for node in nodes.values():
            node.stop()
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


async def test_the_nodes_follow_a_sentinel_failover_of_redis(
    sentinel_cluster: tuple[dict[str, Node], dict[str, Any]], cameras: Any
) -> None:
    """Redis is no longer a single point: the master is killed, the Sentinel promotes the
    replica, and the nodes keep routing through it (claims, placement, records)."""
    import redis.asyncio as redis

    nodes, redis_side = sentinel_cluster
    ports, processes = redis_side["ports"], redis_side["processes"]
    one, two = nodes["node_s1"], nodes["node_s2"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        first = cameras(one, "cam_sen_1", fps=5, size=(160, 120))
        await wait_for(lambda: _measured(first.peer, 3), 30, "cam_sen_1 streaming")
        await placed(http, two, "cam_sen_1")

        processes["master"].kill()
        processes["master"].wait()
        sentinel = redis.Redis(host="127.0.0.1", port=ports["sentinel"], decode_responses=True)
        try:

            async def promoted() -> bool:
                address = await sentinel.sentinel_get_master_addr_by_name("komi")
                return bool(address) and int(address[1]) == ports["replica"]

            await wait_for(promoted, 30, "the Sentinel promoting the replica")
        finally:
            await sentinel.aclose()

        # after the failover: a new camera is placed and claimed in the new master, an id
        # streaming on one node is refused on the other, and the first camera streams on
        second = cameras(two, "cam_sen_2", fps=5, size=(160, 120))
        await wait_for(lambda: _measured(second.peer, 3), 30, "cam_sen_2 streaming")
        for node in (one, two):
            await placed(http, node, "cam_sen_1", "cam_sen_2", timeout=15)
        new_master = redis.Redis(host="127.0.0.1", port=ports["replica"], decode_responses=True)
        try:
            assert await new_master.get("komi:camera:cam_sen_2") in (one.id, two.id)
        finally:
            await new_master.aclose()
        other = two if (await placement(http, two))["cam_sen_1"] == one.id else one
        with pytest.raises(AssertionError, match="409"):  # its claim, read from the new master
            peer = await connect_camera(
                other.url, CapturedTrack(open_source("demo", 160, 120, 5), 5), "cam_sen_1"
            )
            await peer.close()
        await wait_for(
            lambda n=first.peer.status.results: _measured(first.peer, n + 5), 20, "results"
        )


def test_a_second_node_with_a_live_node_s_id_refuses_to_start(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Two nodes with one id would take each other's cameras and end each other's sets."""
    live = next(n for n in cluster.nodes.values() if n.alive)
    twin = Node(live.id, cluster.redis_url, cluster.db_url, tmp_path)
    try:
        code = twin.process.wait(timeout=120)
    finally:
        twin.stop()
    log = twin.log.read_text()
    assert code == 2, log
    assert f"--node-id {live.id} is in use by the node at {live.url}" in log
    assert live.alive
