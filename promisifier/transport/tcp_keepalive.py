"""TCP keep-alive for connections whose WAMP transport has no ping both ends answer.

RawSocket defines PING and PONG, but autobahn-python's RawSocket peers (and so Crossbar)
read a PING as an oversized frame and drop the connection, so neither the relay nor the
client can send one to a peer it did not write. The kernel can: with TCP keep-alive on,
a connection that carries nothing for ``idle`` seconds is probed, and one whose peer is
gone (host down, cable pulled, a NAT that forgot it) is closed after ``timeout`` more
seconds. Where the system allows it (Linux), ``TCP_USER_TIMEOUT`` bounds the same way a
connection whose sent data stays unacknowledged, or whose peer's receive window stays
shut (it stopped reading), for ``idle + timeout`` seconds: otherwise data in flight to a
vanished peer keeps it "alive" for the whole retransmission schedule (about 15 minutes).
"""

from __future__ import annotations

import math
import socket
from typing import Any

#: probes sent before the kernel gives up on a connection
PROBES = 3


def _socket_of(transport: Any) -> socket.socket | None:
    # TCP transports have getHandle(); TLS wraps one (its getHandle() is the TLS object).
    for _ in range(3):
        if transport is None:
            return None
        handle = getattr(transport, "getHandle", None)
        candidate = handle() if handle is not None else None
        if isinstance(candidate, socket.socket):
            return candidate
        transport = getattr(transport, "transport", None)
    return None


def enable_tcp_keepalive(transport: Any, idle: float, timeout: float) -> bool:
    """Turn on keep-alive probes for the TCP connection under ``transport``.

    A connection idle for ``idle`` seconds is probed :data:`PROBES` times, ``timeout`` /
    :data:`PROBES` seconds apart (whole seconds, at least 1); data unacknowledged for
    ``idle + timeout`` seconds closes it too (Linux). Returns False, changing
    nothing, when ``idle`` is 0 or the transport is not TCP (a UNIX socket, an
    in-memory transport). Where the system has no per-socket timings (not Linux), its
    own defaults apply.
    """
    if idle <= 0:
        return False
    sock = _socket_of(transport)
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, math.ceil(idle)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, math.ceil(timeout / PROBES)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, PROBES)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, math.ceil((idle + timeout) * 1000))
    return True
