"""Why a TLS handshake failed, in a few words a user can act on.

OpenSSL reports a failed handshake as a list of ``(library, function, reason)`` tuples,
and Twisted hands it to the protocol's ``connectionLost`` (a WebSocket client then only
sees "connection closed during the opening handshake"). :func:`tls_failure` turns it
into ``TLS handshake failed: certificate verify failed``.
"""

from __future__ import annotations

from typing import Any

#: how :func:`tls_failure`'s text starts
TLS_FAILED = "TLS handshake failed"


def tls_failure(reason: Any) -> str | None:
    """The text for a connection lost to a TLS error (a Failure or an exception), else None."""
    try:
        from OpenSSL.SSL import Error
    except ImportError:  # pragma: no cover - pyOpenSSL comes with the package
        return None
    error = getattr(reason, "value", reason)
    if not isinstance(error, Error):
        return None
    entries = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [entry[-1] for entry in entries if isinstance(entry, tuple) and entry and entry[-1]]
    return f"{TLS_FAILED}: " + ("; ".join(dict.fromkeys(reasons)) or str(error) or type(error).__name__)


__all__ = ["TLS_FAILED", "tls_failure"]
