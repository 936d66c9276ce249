"""Pieces shared by the façades in :mod:`promisifier.compat`.

* Namespaces and realms (rpc-websockets style): a namespace is ``"/"`` or ``"/a/b"``; its
  realm is ``realm1`` for ``"/"``, else the segments joined with ``.`` (``"/a/b"`` ->
  ``a.b``); a URL path selects a namespace, with a leading ``ws`` segment dropped
  (``/ws`` and ``/`` -> ``"/"``, ``/ws/chat`` and ``/chat`` -> ``"/chat"``).
* Structured errors (:class:`RpcError`: code, message, data) and their wire form:
  ERROR ``promisifier.rpc.error``, args ``[message]``, kwargs ``{code, message, data}``.
* Login params in a WAMP ticket (:func:`login_credentials`, :func:`decode_login`).
* :class:`Outcome`: the result of one Deferred handed to any number of later waiters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.python.failure import Failure

from promisifier.client.errors import ApplicationError, CallTimeout
from promisifier.wire import is_valid_uri

__all__ = [
    "DEFAULT_REALM",
    "EVENTS_PROCEDURE",
    "RPC_ERROR_URI",
    "Outcome",
    "RpcError",
    "decode_login",
    "login_credentials",
    "namespace_for_path",
    "normalize_namespace",
    "realm_for_namespace",
    "rpc_error",
]

#: the realm of the default namespace "/"
DEFAULT_REALM = "realm1"
#: the error URI of structured errors (code, message, data)
RPC_ERROR_URI = "promisifier.rpc.error"
#: the procedure of a Server façade's namespace that lists its declared events
EVENTS_PROCEDURE = "promisifier.rpc.events"

#: router error URI -> (JSON-RPC style code, default message)
_ERROR_CODES = {
    "wamp.error.no_such_procedure": (-32601, "Method not found"),
    "wamp.error.invalid_argument": (-32602, "Invalid params"),
    "wamp.error.not_authorized": (-32605, "Method forbidden"),
}
_SERVER_ERROR = (-32000, "Server error")

_AUTHID_KEYS = ("authid", "username", "user", "login")


# -- namespaces ----------------------------------------------------------------------------


def _segments(text: str) -> list[str]:
    parts = [unquote(part) for part in text.split("/") if part]
    for part in parts:
        if not is_valid_uri(part) or "." in part:
            raise ValueError(f"namespace segment {part!r} is not one WAMP URI component (no '.', whitespace or '#')")
    if parts == [DEFAULT_REALM]:
        return []
    return parts


def normalize_namespace(namespace: str) -> str:
    """The canonical name of a namespace: ``"/"`` or ``"/a/b"`` (``"chat"`` -> ``"/chat"``,
    ``"/realm1"`` -> ``"/"``). Raises ValueError for a segment that is not a URI component."""
    if not isinstance(namespace, str):
        raise TypeError(f"a namespace is a str, not {type(namespace).__name__}")
    return "/" + "/".join(_segments(namespace))


def realm_for_namespace(namespace: str) -> str:
    """The realm of a namespace: ``"/"`` -> ``realm1``, ``"/a/b"`` -> ``a.b``."""
    parts = _segments(namespace)
    return ".".join(parts) if parts else DEFAULT_REALM


def namespace_for_path(path: str) -> str:
    """The namespace a URL path selects (a leading ``ws`` segment is dropped)."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] == "ws":
        parts = parts[1:]
    return normalize_namespace("/".join(parts))


# -- errors --------------------------------------------------------------------------------


class RpcError(ApplicationError):
    """A structured error: ``code``, ``message``, ``data`` (and the WAMP ``error`` URI).

    Raise one in a Server façade method (``server.create_error(code, message, data)``
    makes it) to answer the caller with it; a call through :class:`Client` fails with one.
    On the wire: ERROR ``promisifier.rpc.error``, args ``[message]``, kwargs
    ``{"code", "message", "data"}`` (``data`` only when given).
    """

    def __init__(
        self,
        code: int,
        message: str,
        data: Any = None,
        *,
        uri: str = RPC_ERROR_URI,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        if kwargs is None:
            kwargs = {"code": code, "message": message}
            if data is not None:
                kwargs["data"] = data
        super().__init__(uri, *(args if args is not None else (message,)), **kwargs)
        self.code = code
        self._message = message
        self.data = data

    @property
    def message(self) -> str:  # type: ignore[override]
        return self._message

    def as_dict(self) -> dict[str, Any]:
        """``{"code", "message", "data"}`` as rpc-websockets reports an error."""
        return {"code": self.code, "message": self._message, "data": self.data}


def rpc_error(error: ApplicationError) -> ApplicationError:
    """``error`` as an :class:`RpcError` (a :class:`CallTimeout` stays what it is)."""
    if isinstance(error, (RpcError, CallTimeout)):
        return error
    kwargs = error.kwargs
    if error.error == RPC_ERROR_URI and "code" in kwargs:
        message = kwargs.get("message")
        return RpcError(
            kwargs["code"],
            message if isinstance(message, str) else (error.message or ""),
            kwargs.get("data"),
            uri=error.error,
            args=error.args,
            kwargs=kwargs,
        )
    code, default = _ERROR_CODES.get(error.error, _SERVER_ERROR)
    return RpcError(code, error.message or default, None, uri=error.error, args=error.args, kwargs=kwargs)


# -- login credentials -----------------------------------------------------------------


def login_credentials(params: dict[str, Any]) -> tuple[str | None, str]:
    """(authid, ticket) that :meth:`Client.login` sends for ``params``."""
    if not isinstance(params, dict):
        raise TypeError(f"login params must be a dict, not {type(params).__name__}")
    authid = next((params[k] for k in _AUTHID_KEYS if isinstance(params.get(k), str) and params[k]), None)
    ticket = params.get("ticket")
    if isinstance(ticket, str):
        return authid, ticket
    try:
        return authid, json.dumps(params, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"login params must be JSON-serializable: {error}") from None


def decode_login(authid: str, ticket: str) -> dict[str, Any]:
    """The ``params`` a client's :meth:`Client.login` sent, from its authid and ticket."""
    try:
        params = json.loads(ticket)
    except ValueError:
        params = None
    if isinstance(params, dict):
        return params
    return {"authid": authid, "ticket": ticket}


class Outcome:
    """The outcome of one Deferred, handed to any number of later waiters."""

    def __init__(self, d: defer.Deferred[Any]) -> None:
        self.done = False
        self.result: Any = None
        self._waiters: list[defer.Deferred[Any]] = []
        d.addBoth(self._set)

    def _set(self, result: Any) -> None:
        self.done, self.result = True, result
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            self._fire(waiter)

    def _fire(self, waiter: defer.Deferred[Any]) -> None:
        if isinstance(self.result, Failure):
            waiter.errback(self.result)
        else:
            waiter.callback(self.result)

    def wait(self) -> defer.Deferred[Any]:
        waiter: defer.Deferred[Any] = defer.Deferred()
        if self.done:
            self._fire(waiter)
        else:
            self._waiters.append(waiter)
        return waiter
