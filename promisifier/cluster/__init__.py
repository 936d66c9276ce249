"""Several relays as one router, over a shared bus (Redis).

Each node keeps its own in-memory router as the truth for its own sessions; the bus carries
what other nodes need: publications, calls and their answers, and the cluster-wide tables
(nodes, registrations). Nothing in :mod:`promisifier.router` knows which bus is used:
:mod:`promisifier.cluster.bus` is the interface, :mod:`promisifier.cluster.redis_bus` its
implementation on Redis 7 with txredisapi.
"""

from promisifier.cluster.cluster_config import ClusterConfig, RedisAddress

__all__ = ["ClusterConfig", "RedisAddress"]
