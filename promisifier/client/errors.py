"""Exceptions of the client library.

Two families:

* :class:`ApplicationError` (and :class:`CallTimeout`): a WAMP ``ERROR`` with a URI, args
  and kwargs. The remote raised it, the router answered it, or a call ran out of time.
* :class:`ClientError` and its subclasses: the session or its connection is not there
  (:class:`NotConnected`, :class:`ConnectionLost`, :class:`ConnectionClosed`,
  :class:`SessionAborted`, :class:`ConnectTimeout`, :class:`ConnectFailed`,
  :class:`InvalidURL`).

A call that times out fails with :class:`CallTimeout`, a subclass of
:class:`ApplicationError` whose URI is ``wamp.error.timeout``: the same error whether the
local timer or the router (call timeout feature) ended the call, so ``except CallTimeout``
and ``except ApplicationError`` checking ``.error == "wamp.error.timeout"`` both work.
"""

from __future__ import annotations

from typing import Any

TIMEOUT_URI = "wamp.error.timeout"
CANCELED_URI = "wamp.error.canceled"
RUNTIME_ERROR_URI = "wamp.error.runtime_error"
FEATURE_NOT_SUPPORTED_URI = "wamp.error.feature_not_supported"


class ApplicationError(Exception):
    """A WAMP application error: an error URI plus positional and keyword payload.

    Raise it in a procedure to answer the caller with that ``ERROR``; a call whose
    callee (or the router) answered with ``ERROR`` fails with it::

        raise ApplicationError("com.example.error.not_found", "no user 7", user=7)

    Attributes: ``error`` (the URI), ``args`` (tuple), ``kwargs`` (dict).
    """

    error: str
    kwargs: dict[str, Any]

    def __init__(self, error: str, /, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)
        self.error = error
        self.kwargs = kwargs

    @property
    def message(self) -> str | None:
        """The first positional argument when it is a string (the usual error text)."""
        if self.args and isinstance(self.args[0], str):
            return self.args[0]
        return None

    def __str__(self) -> str:
        parts = [self.error]
        if self.args:
            parts.append(", ".join(repr(a) if not isinstance(a, str) else a for a in self.args))
        if self.kwargs:
            parts.append(", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()))
        return ": ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error!r}, args={list(self.args)!r}, kwargs={self.kwargs!r})"


class CallTimeout(ApplicationError):
    """A call that did not complete within its ``timeout`` (URI ``wamp.error.timeout``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(TIMEOUT_URI, *args, **kwargs)


class ClientError(Exception):
    """Base class of the errors about the session or its connection (not the application)."""


class NotConnected(ClientError):
    """There is no joined session to send the request on."""


class ConnectionLost(ClientError):
    """The session ended (connection dropped or closed, or GOODBYE) before the answer came.

    ``code`` and ``reason`` are the WebSocket close code and reason when known, else None.
    """

    def __init__(self, message: str = "connection lost", code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ConnectionClosed(ClientError):
    """The connection ended with a close code other than 1000 (or before a session joined).

    ``code`` is the WebSocket close code (1006 when no close frame arrived), ``reason``
    the close reason text.
    """

    def __init__(self, code: int, reason: str = "", message: str | None = None) -> None:
        super().__init__(message or f"connection closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class SessionAborted(ClientError):
    """The router refused the session (``ABORT``), or the client could not authenticate.

    ``reason`` is the ABORT reason URI (e.g. ``wamp.error.no_such_realm``), ``message``
    the text the router gave (possibly empty).
    """

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


class ConnectTimeout(ClientError):
    """No joined session within the ``timeout`` given to :func:`connect`."""


class ConnectFailed(ClientError):
    """No connection to the router: refused, unknown host, unreachable, TLS handshake
    failed. ``url`` is the URL, ``reason`` says why in a few words (e.g. ``connection
    refused``), ``cause`` is the underlying exception (Twisted's or OpenSSL's)."""

    def __init__(self, url: str, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(f"cannot connect to {url}: {reason}")
        self.url = url
        self.reason = reason
        self.cause = cause


class InvalidURL(ClientError, ValueError):
    """A URL the client cannot connect to (wrong scheme, no host, ...); also a
    ``ValueError``."""


__all__ = [
    "ApplicationError",
    "CallTimeout",
    "ClientError",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionLost",
    "InvalidURL",
    "NotConnected",
    "SessionAborted",
]
