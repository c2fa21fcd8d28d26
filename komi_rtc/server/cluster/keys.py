"""What a cluster keeps in Redis, and for how long: the key layout, the claim scripts and the
lifetimes of records and claims.

Redis holds only routing state: each node's record (`komi:node:<id>`, refreshed by a
heartbeat and expiring EXPIRY_MS after the node stops beating) and the set of node ids; which
node hosts which camera and station (`komi:camera:<id>`, `komi:station:<id>`: claims that
expire with their node); which node's station asked for a camera (`komi:wanted:<id>`); a
fingerprint of the admin token, the revoked tokens and the nodes' page origins. Events travel
on one pub/sub channel.
"""

from __future__ import annotations

PREFIX = "komi:"
CHANNEL = PREFIX + "events"
FINGERPRINT_KEY = PREFIX + "admin_fingerprint"  # an HMAC of a label with the admin token
# what versions before 2026-12 kept in Redis in clear (removed at start)
LEGACY_SECRET_KEYS = (PREFIX + "admin_token", PREFIX + "cluster_key")
REVOKED_KEY = PREFIX + "revoked"
NODES_KEY = PREFIX + "nodes"
ORIGINS_KEY = PREFIX + "origins"  # node page origins by when last seen: its pages may call
ORIGIN_KEPT_S = 7 * 24 * 3600.0  # any node this long after it was last up (then forgotten)
CAMERA_KEYS = PREFIX + "camera:*"  # every camera claim (a SCAN pattern)

HEARTBEAT_S = 1.0
EXPIRY_MS = 3000  # a node's record and claims outlive its last heartbeat by this much
STATION_RESERVATION_MS = 10_000  # a new station's node, until its heartbeat renews it
WANTED_MS = 30_000  # a camera a station asked for goes to its node when it reconnects meanwhile
REDIS_WAIT_S = 1.0  # an offer waits no longer than this for Redis (then decides alone)


def node_key(node_id: str) -> str:
    return f"{PREFIX}node:{node_id}"


def camera_key(camera_id: str) -> str:
    return f"{PREFIX}camera:{camera_id}"


def camera_of_key(key: str) -> str:
    """The camera id of a `camera_key`."""
    return key.removeprefix(f"{PREFIX}camera:")


def station_key(station_id: str) -> str:
    return f"{PREFIX}station:{station_id}"


def wanted_key(camera_id: str) -> str:
    return f"{PREFIX}wanted:{camera_id}"


# a claim is given up only by its owner, and renewed only by it (or taken when free)
RELEASE_CLAIM = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
)
RENEW_CLAIM = (
    "local v = redis.call('get', KEYS[1]) "
    "if v == false or v == ARGV[1] then "
    "return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "return 0"
)
