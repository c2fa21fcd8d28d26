"""Redis is shared, not trusted: someone who can write to it, but was not given the admin
token, cannot make the nodes trust a forged node, revoke a token or speak to monitors; the
nodes keep no secret there; and a request one node passes to another carries a signed
grant, never the client's token.

Two real nodes (server processes) on a real Redis, shared by the tests; a third node is
started and stopped at the beginning, so that its last record can be replayed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import web
from auth import ADMIN_TOKEN, AUTH_HEADERS, call, mint_token
from cluster_nodes import Cluster, Node, wait_joined
from databases import redis_server
from harness import free_port, wait_for
from multidict import CIMultiDict

from komi_rtc.server.cluster import NodeInfo
from komi_rtc.server.cluster.signing import ClusterKeys

pytestmark = pytest.mark.databases  # Redis

OLD_SIGNING_KEY = "an-older-version-s-signing-key-0123"  # with the token, before the start
BAD_SDP = "v=0\r\n"  # passes the offer's checks; refused after placement (no video)


@dataclass
class SecureCluster:
    nodes: Cluster
    redis_url: str
    dead_record: str  # the last record of a node that stopped
    workdir: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    workdir = tmp_path_factory.mktemp("secure_cluster")
    with redis_server() as redis_url:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        client.set("komi:admin_token", ADMIN_TOKEN)  # what an older version left there
        client.set("komi:cluster_key", OLD_SIGNING_KEY)
        names = ("node_a", "node_b", "node_gone")
        nodes = {n: Node(n, redis_url, f"sqlite:///{workdir / n}.sqlite3", workdir) for n in names}
        try:
            wait_joined(nodes)
            dead_record = client.get("komi:node:node_gone")
            assert dead_record is not None
            nodes.pop("node_gone").stop()
            wait_joined(nodes)  # the others dropped it
            yield SecureCluster(Cluster(nodes, redis_url, ""), redis_url, dead_record, workdir)
        finally:
            client.close()
            for node in nodes.values():
                node.stop()


@dataclass
class Captured:
    method: str
    path: str  # with its query, as sent
    headers: CIMultiDict[str]
    body: bytes


class Listener:
    """Something at a node's address that records every request it gets and answers 200."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.requests: list[Captured] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Listener:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = int(self.url.rsplit(":", 1)[1])
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Captured(
                request.method, request.rel_url.raw_path_qs, CIMultiDict(request.headers), body
            )
        )
        return web.json_response({"captured": True})


def _record_of(node_id: str, url: str, cameras: list[str]) -> dict[str, Any]:
    """A node record as a heartbeat writes it: far more capacity left than any real node."""
    info = NodeInfo(id=node_id, url=url, capacity_fps=1e9, workers=1000, cameras=cameras)
    return info.to_wire()


async def _beats(store: aioredis.Redis, node: Node, beats: int) -> None:
    """Wait until `node` rewrote its record `beats` times from now (each rewrite renews its
    expiry; polled well within a heartbeat): each heartbeat but the last has then also read
    every other node's record."""
    renewed = 0
    left = await store.pttl(f"komi:node:{node.id}")

    async def beaten() -> bool:
        nonlocal renewed, left
        now = await store.pttl(f"komi:node:{node.id}")
        renewed += now > left
        left = now
        return renewed >= beats

    await wait_for(beaten, 15, f"{node.id} beating {beats} times")


async def _listed_nodes(http: aiohttp.ClientSession, node: Node) -> set[str]:
    async with http.get(f"{node.url}/cluster") as response:
        assert response.status == 200
        return {n["id"] for n in (await response.json())["nodes"]}


REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)


async def _offer(node: Node, camera_id: str, **how: Any) -> tuple[int, Any, str | None]:
    """A camera offer whose SDP aiortc refuses: 400 from whichever node negotiates it."""
    body = {"sdp": BAD_SDP, "type": "offer", "role": "camera", "camera_id": camera_id}
    body.update(how.pop("body", {}))
    # bounded: a request that hangs fails here, with its camera, not at pytest's timeout
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        async with http.post(f"{node.url}/offer", json=body, **how) as response:
            return response.status, await response.json(), response.headers.get("X-Komi-Node")


@pytest.fixture
async def store(cluster: SecureCluster) -> AsyncIterator[aioredis.Redis]:
    """The cluster's Redis, as someone with write access to it (and no admin token)."""
    client = aioredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_no_secret_is_kept_in_redis(cluster: SecureCluster, store: aioredis.Redis) -> None:
    """Neither the admin token nor a key derived from it is in any key, also after a
    revocation (kept in Redis) and with the leftover of an older version deleted."""
    a = cluster.nodes["node_a"]
    minted = await mint_token(a.url, role="monitor")
    status, _ = await call(f"{a.url}/tokens/{minted['token_id']}", "DELETE")
    assert status == 200
    assert await store.hexists("komi:revoked", minted["token_id"])
    keys = ClusterKeys(ADMIN_TOKEN)
    secrets = [ADMIN_TOKEN.encode(), OLD_SIGNING_KEY.encode()]
    for derived in (keys._requests, keys._records):  # the derived keys, in any spelling
        secrets += [derived, derived.hex().encode(), base64.b64encode(derived)]
    raw = aioredis.Redis.from_url(cluster.redis_url)  # bytes, as stored
    try:
        names = [name async for name in raw.scan_iter(count=500)]
        assert b"komi:admin_token" not in names and b"komi:cluster_key" not in names
        assert b"komi:node:node_a" in names and b"komi:admin_fingerprint" in names
        for name in names:
            kind = (await raw.type(name)).decode()
            if kind == "string":
                values = [await raw.get(name)]
            elif kind == "hash":
                values = [x for pair in (await raw.hgetall(name)).items() for x in pair]
            elif kind == "set":
                values = list(await raw.smembers(name))
            elif kind == "zset":
                values = await raw.zrange(name, 0, -1)
            else:
                values = await raw.lrange(name, 0, -1)
            stored = b"\n".join([name, *values])
            for secret in secrets:
                assert secret.lower() not in stored.lower(), (name, kind)
    finally:
        await raw.aclose()
    logs = "".join(log.read_text() for log in cluster.workdir.glob("*.log"))
    assert logs.count("deleted the admin token and signing key an older version kept") == 1


async def test_a_forged_or_replayed_node_record_is_ignored(
    cluster: SecureCluster, store: aioredis.Redis
) -> None:
    """Records written straight into Redis (no MAC, a wrong MAC, a dead node's old record
    written back without expiry) bring no node: none is listed, no camera is placed there,
    no status relay goes there, and each is logged once however often it is read."""
    a, b = cluster.nodes["node_a"], cluster.nodes["node_b"]
    async with Listener() as forged_node, aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        # monitors on both nodes: each would open a status relay to every node it trusts
        watchers = [await http.ws_connect(f"{n.url}/ws/monitor") for n in (a, b)]
        unsigned = _record_of("node_nomac", forged_node.url, ["cam_hijacked"])
        wrong = {**_record_of("node_badmac", forged_node.url, []), "at": time.time()}
        forged = {
            "komi:node:node_nomac": json.dumps(unsigned),
            "komi:node:node_badmac": json.dumps({**wrong, "mac": "00" * 32}),
            "komi:node:node_gone": cluster.dead_record,
        }
        try:
            for key, value in forged.items():
                await store.set(key, value)  # no expiry
            await store.sadd("komi:nodes", "node_nomac", "node_badmac", "node_gone")
            for node in (a, b):
                await _beats(store, node, 3)
            for node in (a, b):
                assert await _listed_nodes(http, node) == {"node_a", "node_b"}
                async with http.get(f"{node.url}/cameras") as response:
                    assert "cam_hijacked" not in (await response.json())["cameras"]
            status, answer, _ = await _offer(a, "cam_placed", headers=AUTH_HEADERS)
            assert status == 400 and "video track" in answer["error"], answer  # a real node's
            assert forged_node.requests == []  # no offer, no status relay
        finally:
            await store.delete(*forged)
            for ws in watchers:
                await ws.close()
        log = a.log.read_text()
        assert log.count("ignoring node node_nomac's record: no signature") == 1, log[-3000:]
        assert log.count("ignoring node node_badmac's record: bad signature") == 1


async def test_forged_events_neither_revoke_a_token_nor_reach_monitors(
    cluster: SecureCluster, store: aioredis.Redis
) -> None:
    """Events published straight into Redis (no MAC, a real event's MAC on another token,
    a camera list, a message to monitors) are ignored; the real revocations published after
    them are the barriers: once a node took those, it had read the forged ones."""
    a, b = cluster.nodes["node_a"], cluster.nodes["node_b"]
    kept, first_barrier, second_barrier = [
        await mint_token(a.url, role="monitor") for _ in range(3)
    ]
    listener = store.pubsub()
    await listener.subscribe("komi:events")
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        ws = await http.ws_connect(f"{b.url}/ws/monitor")
        assert (await ws.receive_json(timeout=10))["type"] == "cameras_list"
        await _revoke_and_wait(a, b, first_barrier)
        genuine = None
        async with asyncio.timeout(10):
            while genuine is None:
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
                if message and json.loads(message["data"]).get("type") == "revoked":
                    genuine = json.loads(message["data"])
        assert genuine["token_id"] == first_barrier["token_id"]
        forged_text = json.dumps({"type": "rep_completed", "camera_id": "cam_forged", "rep": 1})
        for event in (
            {**genuine, "token_id": kept["token_id"]},  # a real MAC, another token
            {"type": "revoked", "node": "node_x", "token_id": kept["token_id"], "expires_at": 0},
            {"type": "event", "node": "node_x", "camera_id": "cam_forged", "text": forged_text},
            {"type": "cameras", "node": "node_x", "cameras": ["cam_forged"], "url": a.url},
            {**genuine, "type": "event", "text": forged_text},
        ):
            await store.publish("komi:events", json.dumps(event))
        await store.publish("komi:events", json.dumps(genuine))  # a replay of a real one
        await _revoke_and_wait(a, b, second_barrier)
        for node in (a, b):
            status, _ = await call(f"{node.url}/cameras", token=kept["token"])
            assert status == 200, node.id  # not revoked
            async with http.get(f"{node.url}/cameras") as response:
                assert "cam_forged" not in (await response.json())["cameras"]
        # what the monitor got before its own request's answer: nothing forged
        await ws.send_str("anything")
        received = []
        async with asyncio.timeout(10):
            while not received or received[-1].get("type") != "error":
                received.append(await ws.receive_json())
        assert not any("cam_forged" in json.dumps(m) for m in received), received
        await ws.close()
    await listener.aclose()
    log = b.log.read_text()  # each kind of forged event logged once (a minute)
    assert log.count("ignoring a 'revoked' event: bad signature") == 1, log[-3000:]
    assert log.count("ignoring a 'revoked' event") == 1
    assert log.count("ignoring a 'event' event") == 1
    assert log.count("ignoring a 'cameras' event") == 1


async def _revoke_and_wait(by: Node, other: Node, minted: dict[str, Any]) -> None:
    status, _ = await call(f"{by.url}/tokens/{minted['token_id']}", "DELETE")
    assert status == 200

    async def refused() -> bool:
        status, _ = await call(f"{other.url}/cameras", token=minted["token"])
        return status == 401

    await wait_for(refused, 10, f"{other.id} taking the revocation")


class _SignedNode:
    """A node of the cluster as far as Redis goes (the test holds the admin token): its
    record, signed and renewed, points at a Listener, with more capacity left than any."""

    def __init__(self, store: aioredis.Redis, node_id: str, url: str) -> None:
        self.id = node_id
        self._store = store
        self._keys = ClusterKeys(ADMIN_TOKEN)
        self._record = _record_of(node_id, url, [])
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _SignedNode:
        await self._beat()
        self._task = asyncio.create_task(self._beating())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._store.delete(f"komi:node:{self.id}")
        await self._store.srem("komi:nodes", self.id)

    async def _beat(self) -> None:
        sealed = self._keys.seal(f"node:{self.id}", self._record)
        await self._store.set(f"komi:node:{self.id}", sealed, px=3000)
        await self._store.sadd("komi:nodes", self.id)

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(0.5)  # pacing: a heartbeat
            await self._beat()


async def test_a_forwarded_request_carries_a_signed_grant_and_no_token(
    cluster: SecureCluster, store: aioredis.Redis
) -> None:
    """The offers a node passes on (token in the body, the header or the query) carry no
    token, and neither does its status relay: a signed grant stands for it. The hosting node
    takes the grant as it was signed, once, for that body only, and not once revoked."""
    a, b = cluster.nodes["node_a"], cluster.nodes["node_b"]
    camera = await mint_token(a.url, role="camera")
    token = camera["token"]
    async with Listener() as far, _SignedNode(store, "node_far", far.url):
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:

            async def trusted() -> bool:
                return "node_far" in await _listed_nodes(http, a)

            await wait_for(trusted, 10, "node_a trusting the signed record")
            watcher = await http.ws_connect(f"{a.url}/ws/monitor")  # opens a relay there
            offers = [
                await _offer(a, "cam_far_1", body={"token": token}),
                await _offer(a, "cam_far_2", headers={"Authorization": f"Bearer {token}"}),
                await _offer(a, "cam_far_3", params={"token": token}),
            ]
            assert [(s, n) for s, _, n in offers] == [(200, "node_far")] * 3, offers

            async def relayed() -> bool:
                return any(r.path == "/ws/monitor?scope=node" for r in far.requests)

            await wait_for(relayed, 10, "node_a's status relay reaching node_far")
            await watcher.close()
        offered = [r for r in far.requests if r.path.startswith("/offer")]
        assert len(offered) == 3
        for request in far.requests:
            assert "Authorization" not in request.headers
            assert token not in request.path and token.encode() not in request.body
            assert not any(token in v for v in request.headers.values())
            assert "X-Komi-Forwarded" in request.headers
        for request in offered:
            assert request.path == "/offer" and "token" not in json.loads(request.body)
            grant = json.loads(request.headers["X-Komi-Grant"])
            assert grant["role"] == "camera" and grant["token_id"] == camera["token_id"]
        relay = next(r for r in far.requests if r.path == "/ws/monitor?scope=node")
        assert json.loads(relay.headers["X-Komi-Grant"])["role"] == "monitor"

    # node_b never saw these: sent there as captured, or changed
    first, second, third = offered
    admin = json.dumps({**json.loads(first.headers["X-Komi-Grant"]), "role": "admin"})
    status, answer = await _replay(b, first, headers={"X-Komi-Grant": admin})
    assert status == 403 and "signature" in answer["error"], answer
    status, answer = await _replay(b, first)  # as signed: the grant is enough, no token
    assert status == 400 and "video track" in answer["error"], answer
    status, answer = await _replay(b, first)  # a signature serves once
    assert status == 403 and "signature" in answer["error"], answer
    other_body = third.body.replace(b"cam_far_3", b"cam_far_9")
    status, answer = await _replay(b, third, body=other_body)
    assert status == 403 and "body" in answer["error"], answer
    await _revoke_and_wait(a, b, {"token_id": camera["token_id"], "token": token})
    status, answer = await _replay(b, second)  # its token was revoked since it was signed
    assert status == 401 and "revoked" in answer["error"], answer


async def _replay(
    node: Node, captured: Captured, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, Any]:
    """Send a captured node-to-node request to `node`, changed as given."""
    sent = CIMultiDict(
        (k, v) for k, v in captured.headers.items() if k.lower().startswith("x-komi-")
    )
    sent["Content-Type"] = captured.headers.get("Content-Type", "application/json")
    sent.update(headers or {})
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        async with http.request(
            captured.method,
            f"{node.url}{captured.path}",
            headers=sent,
            data=captured.body if body is None else body,
        ) as response:
            return response.status, await response.json()


def test_a_node_needs_the_cluster_s_admin_token_to_start(
    cluster: SecureCluster, tmp_path: Path
) -> None:
    """None given (none is taken from Redis any more), or another than the cluster's: the
    node says what to do and does not start."""
    env = {k: v for k, v in os.environ.items() if k != "KOMI_ADMIN_TOKEN"}
    command = [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1", "--port", "0"]
    command += ["--redis", cluster.redis_url, "--state-dir", str(tmp_path)]
    for token, said in (
        (None, "every node of a cluster must be given the same admin token"),
        ("another-admin-token-0123456789", "given a different admin token"),
    ):
        run_env = env if token is None else {**env, "KOMI_ADMIN_TOKEN": token}
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=run_env)
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "KOMI_ADMIN_TOKEN" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
