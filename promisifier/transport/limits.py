"""Defaults every transport shares: the largest message, the slow-consumer cap and policy.

Defined here once; the router's configuration, the listeners and the transport factories
take their defaults from this module.
"""

from __future__ import annotations

#: default limit on one received WAMP message (bytes of payload): 16 MiB, also the
#: largest frame RawSocket can carry
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: bytes queued for a peer beyond which it is a slow consumer
DEFAULT_MAX_OUTGOING_BUFFER = 4 * 1024 * 1024
#: seconds between keep-alive pings to an idle peer, and to wait for its pong (0: off)
DEFAULT_KEEPALIVE_INTERVAL = 30.0
DEFAULT_KEEPALIVE_TIMEOUT = 10.0
#: seconds a new connection has to complete its opening handshake
DEFAULT_OPEN_HANDSHAKE_TIMEOUT = 10.0
#: what happens to a slow consumer: its events are dropped, or it is disconnected (1008)
SLOW_CONSUMER_POLICIES = ("drop", "disconnect")


def check_slow_consumer(policy: str, where: str = "slow_consumer") -> str:
    """``policy`` if it is one of :data:`SLOW_CONSUMER_POLICIES`, else ``ValueError``
    naming ``where`` (the setting's name in the caller's terms)."""
    if policy not in SLOW_CONSUMER_POLICIES:
        raise ValueError(f"{where}: one of {', '.join(map(repr, SLOW_CONSUMER_POLICIES))} is needed, got {policy!r}")
    return policy
