"""A KOMI cluster (`--redis URL`): nodes that share routing state through Redis, each
hosting its own cameras and stations. Read from the bottom up:

- `keys`: what Redis holds and for how long; `signing`: what nodes trust each other by;
  `redis_clients`: how a node reaches Redis (plain or Sentinel);
- `startup`: the checks before joining; `placement`: where a new camera goes (pure);
- `connection`: what the parts of a node share (clients, keys, tasks);
- `membership`: the heartbeat, this node's record and the view of the others;
- `claims`, `events`, `relay`: the ids and stations claimed, pub/sub, status updates;
- `node`: `Cluster`, which puts them together; `drain`: moving cameras off on SIGTERM;
- `routing`: the HTTP side (requests passed between nodes); `bootstrap`: joining at start.

The rest of the server imports from here.
"""

from ...protocol.cluster_events import NodeInfo
from .bootstrap import cluster_state, default_public_url, join_cluster
from .drain import drain
from .keys import HEARTBEAT_S
from .node import Cluster
from .redis_clients import SentinelAddress, parse_sentinel_url, redacted
from .routing import (
    ask_node,
    client_address,
    cluster_routing,
    forward,
    forwarded,
    forwarded_grant,
    open_forwarder,
)
from .startup import ClusterUnavailable, check_admin_token, check_node_id, check_redis, url_origin

__all__ = [
    "HEARTBEAT_S",
    "Cluster",
    "ClusterUnavailable",
    "NodeInfo",
    "SentinelAddress",
    "ask_node",
    "check_admin_token",
    "check_node_id",
    "check_redis",
    "client_address",
    "cluster_routing",
    "cluster_state",
    "default_public_url",
    "drain",
    "forward",
    "forwarded",
    "forwarded_grant",
    "join_cluster",
    "open_forwarder",
    "parse_sentinel_url",
    "redacted",
    "url_origin",
]
