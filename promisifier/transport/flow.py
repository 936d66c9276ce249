"""How many bytes a connection has queued for its peer: the slow-consumer signal.

A peer that stops reading makes the kernel's socket buffer fill, then Twisted's write
buffer grow without bound. The router looks at that buffer before it routes to a peer:
over a cap, events for it are dropped (or it is disconnected) and calls to it fail,
instead of the relay's memory growing for one slow client.
"""

from __future__ import annotations

from typing import Any


class OutgoingBuffer:
    """Reads the write buffer of the innermost byte transport under a protocol.

    Twisted's TCP transports (``FileDescriptor``) keep unsent data in ``dataBuffer``
    (from ``offset``) plus ``_tempDataBuffer`` (``_tempDataLen`` bytes). TLS sits on top
    of such a transport and writes its records into it, so the innermost buffer counts
    TLS traffic too. A transport without these attributes (in-memory test transports)
    reports 0.
    """

    __slots__ = ("_fd",)

    def __init__(self, transport: Any) -> None:
        fd = None
        for _ in range(5):  # protocol wrappers (TLS, policies) nest only a few deep
            if transport is None:
                break
            if hasattr(transport, "dataBuffer") and hasattr(transport, "_tempDataLen"):
                fd = transport
                break
            transport = getattr(transport, "transport", None)
        self._fd = fd

    def size(self) -> int:
        """Bytes written to the transport and not yet handed to the kernel."""
        fd = self._fd
        if fd is None:
            return 0
        return len(fd.dataBuffer) - fd.offset + fd._tempDataLen
