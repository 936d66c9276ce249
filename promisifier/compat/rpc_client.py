"""An rpc-websockets / msgpack-rpc-websockets style client over :class:`promisifier.Client`.

::

    from promisifier.compat.rpc_client import Client

    client = Client("ws://127.0.0.1:8080/ws")           # connects at once (autoconnect)
    client.on("open", lambda: print("open"))
    total = yield client.call("sum", [2, 3])             # list -> args, dict -> kwargs
    yield client.subscribe("feed_updated")               # then client.on("feed_updated", fn)
    yield client.notify("log", {"text": "hi"})           # runs the method; no answer
    yield client.login({"username": "ann", "password": "pw"})
    yield client.close()

It is a thin layer: a :class:`promisifier.client.Client` keeps the session (reconnects,
restores subscriptions), and every request goes through its session's correlation.

**Namespaces.** A namespace is a realm; the URL path selects it:

==============================================  ============  ============
URL path                                        namespace     realm
==============================================  ============  ============
``/``, ``/ws``, ``/realm1`` (or no path)        ``/``         ``realm1``
``/chat`` or ``/ws/chat``                       ``/chat``     ``chat``
``/game/lobby`` or ``/ws/game/lobby``           ``/game/lobby`` ``game.lobby``
==============================================  ============  ============

A leading ``ws`` segment is dropped (so the relay's usual ``/ws`` path is the default
namespace), the remaining segments are joined with ``.``; each must be one WAMP URI
component. The :class:`~promisifier.compat.rpc_server.Server` façade serves WAMP on every
path of its port, so both forms reach it; the stand-alone relay serves its one path
(``/ws``), where ``realm=`` picks another realm. ``realm=...`` overrides the mapping.

**Parameters and results.** ``params`` may be a list (positional arguments), a dict
(keyword arguments) or None. A result with several values comes back as a list, one with
only keyword values as a dict (a :class:`~promisifier.CallResult` when it has both).
``timeout`` and ``reconnect_interval`` are in milliseconds, as in rpc-websockets. Keyword
names that are options of the underlying call (``timeout``, ``on_progress``,
``disclose_me``, ``wait_connected``) cannot be sent as dict keys (ValueError).

**Errors.** A call fails with :class:`RpcError` (a :class:`~promisifier.ApplicationError`
with ``code``, ``message`` and ``data``): the server's own error (``Server.create_error``;
on the wire ERROR ``promisifier.rpc.error`` with kwargs ``code``, ``message``, ``data``)
comes back intact; router errors get JSON-RPC style codes (``-32601`` no such procedure,
``-32602`` invalid argument, ``-32605`` not authorized, ``-32000`` others) and keep their
URI in ``.error``. Timeouts fail with :class:`~promisifier.CallTimeout`; requests while
not connected with :class:`~promisifier.NotConnected`.

**Events** (:meth:`Client.on`): ``"open"`` (each time a session joins, reconnects
included; not after :meth:`~Client.login`), ``"close"`` (code, reason), ``"error"``
(the exception: a failed connection attempt, or giving up after ``max_reconnects``), and
every event name subscribed with :meth:`~Client.subscribe`: its listeners get the event's
positional values, plus its keyword values as one dict at the end when there are any.

**Login.** :meth:`Client.login` joins again with WAMP ticket authentication. A ``ticket``
key in ``params`` is sent as the ticket itself, with ``authid`` (or ``username``) as the
authid: that is what a relay's static ticket principals need
(``login({"authid": "alice", "ticket": "secret"})``). Otherwise the whole ``params`` go as
JSON text in the ticket, which the Server façade's ``set_auth(fn)`` receives decoded as
``fn(params)``. The new credentials are checked on a second connection first: on bad
credentials ``login`` fails with :class:`LoginFailed` and the current session goes on
untouched; on success the client moves to the new session (subscriptions restored) and
uses the credentials for its reconnects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client.connection import connect as open_session
from promisifier.client.errors import ApplicationError, ClientError, NotConnected, SessionAborted
from promisifier.client.handles import ClientSubscription
from promisifier.client.listeners import Listeners
from promisifier.client.reconnect import Client as ReconnectingClient
from promisifier.client.reconnect import ClientState
from promisifier.client.session import Session
from promisifier.client.tls import TlsOptions
from promisifier.client.types import CallResult
from promisifier.compat.common import (
    DEFAULT_REALM,
    EVENTS_PROCEDURE,
    RPC_ERROR_URI,
    RpcError,
    decode_login,
    login_credentials,
    namespace_for_path,
    normalize_namespace,
    realm_for_namespace,
    rpc_error,
)
from promisifier.transport.closing import truncate_reason

__all__ = [
    "DEFAULT_REALM",
    "RPC_ERROR_URI",
    "Client",
    "LoginFailed",
    "RpcError",
    "decode_login",
    "login_credentials",
    "namespace_for_path",
    "normalize_namespace",
    "realm_for_namespace",
    "rpc_error",
]

log = Logger(namespace="promisifier.compat.rpc")

CALL_OPTIONS = frozenset(("timeout", "on_progress", "disclose_me", "wait_connected"))


def _as_rpc_failure(failure: Failure) -> Failure:
    if isinstance(failure.value, ApplicationError):
        converted = rpc_error(failure.value)
        if converted is not failure.value:
            return Failure(converted)
    return failure


class LoginFailed(ClientError):
    """:meth:`Client.login` was refused; ``reason`` is the router's ABORT reason URI."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


# -- parameters and results --------------------------------------------------------------


def _split_params(params: Any, reserved: frozenset[str]) -> tuple[list[Any], dict[str, Any]]:
    if params is None:
        return [], {}
    if isinstance(params, (list, tuple)):
        return list(params), {}
    if isinstance(params, dict):
        clash = reserved.intersection(params)
        if clash:
            raise ValueError(f"params keys {sorted(clash)} are reserved for options of the request")
        return [], dict(params)
    raise TypeError(f"params must be a list, a dict or None, not {type(params).__name__}")


def _plain_result(result: Any) -> Any:
    if isinstance(result, CallResult):
        if not result.kwargs:
            return list(result.args)
        if not result.args:
            return dict(result.kwargs)
    return result


class Client:
    """An rpc-websockets style client (see the module documentation).

    ``address`` is the WebSocket URL (its path selects the namespace), ``reconnect_interval``
    the initial reconnect delay in milliseconds (with exponential backoff and jitter),
    ``max_reconnects`` the consecutive failed attempts before giving up (0: never).
    ``generate_request_id(method, params)``, when given, is called for each call and its
    value set as ``request_id`` on the returned Deferred (the wire uses WAMP's own ids).
    ``authid``, ``credentials`` and ``tls`` are those of :func:`promisifier.client.connect`
    (e.g. ``credentials={"private_key": "device.key"}``, ``tls={"ca_file": "ca.pem"}``).
    """

    def __init__(
        self,
        address: str = "ws://127.0.0.1:8080/ws",
        autoconnect: bool = True,
        reconnect: bool = True,
        reconnect_interval: float = 1000,
        max_reconnects: int = 5,
        generate_request_id: Callable[[str, Any], Any] | None = None,
        *,
        realm: str | None = None,
        serializers: Iterable[str] = ("msgpack", "json"),
        connect_timeout: float = 10.0,
        reactor: Any = None,
        authid: str | None = None,
        credentials: dict[str, Any] | None = None,
        tls: TlsOptions | dict[str, Any] | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.address = address
        #: the namespace the URL path selects (see the module documentation)
        self.namespace = namespace_for_path(urlsplit(address).path)
        #: the realm joined
        self.realm = realm if realm is not None else realm_for_namespace(self.namespace)
        self.generate_request_id = generate_request_id
        self.reactor = reactor
        self.connect_timeout = connect_timeout
        self._serializers = tuple(serializers)
        self._listeners = Listeners(
            None,
            lambda failure, what: self._client.on_user_error(failure, what),
            lambda event: f"listener of {event!r}",
        )
        self._subscriptions: dict[str, ClientSubscription] = {}
        self._quiet_joins = 0
        self._announced: Session | None = None
        self._open_waiters: list[defer.Deferred[Client]] = []
        self._client = ReconnectingClient(
            address,
            self.realm,
            autoconnect=False,
            reconnect=reconnect,
            reconnect_interval=reconnect_interval / 1000.0,
            max_reconnects=max_reconnects,
            serializers=self._serializers,
            connect_timeout=connect_timeout,
            wait_timeout=connect_timeout,
            reactor=reactor,
            authid=authid,
            credentials=credentials,
            tls=tls,
        )
        self._tls = tls
        self._client.on("join", self._joined)
        self._client.on("attempt_failed", lambda error: self._emit("error", error))
        self._client.on("disconnect", lambda code, reason: self._emit("close", code, reason))
        self._client.on(
            "reconnect_failed",
            lambda: self._emit(
                "error", NotConnected(f"gave up reconnecting to {address} after {max_reconnects} attempts")
            ),
        )
        if autoconnect:
            self.connect().addErrback(lambda _: None)  # reported through "error"

    def __repr__(self) -> str:
        return f"<compat.Client {self.address} realm={self.realm!r} {self.state.value}>"

    # -- facts and events --------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The state of the underlying reconnecting client."""
        return self._client.state

    @property
    def session(self) -> Session | None:
        """The joined session, or None."""
        return self._client.session

    @property
    def ready(self) -> bool:
        """True while a session is joined."""
        return self._client.session is not None

    @property
    def authid(self) -> str | None:
        session = self._client.session
        return session.authid if session is not None else None

    @property
    def authrole(self) -> str | None:
        session = self._client.session
        return session.authrole if session is not None else None

    def on(self, event: str, fn: Callable[..., Any]) -> None:
        """Call ``fn`` on ``"open"``, ``"close"``, ``"error"`` or a subscribed event name."""
        self._listeners.add(event, fn)

    def off(self, event: str, fn: Callable[..., Any] | None = None) -> None:
        """Remove ``fn`` (or every listener) from ``event``."""
        self._listeners.remove(event, fn)

    def _emit(self, event: str, *args: Any) -> None:
        self._listeners.emit(event, *args)

    def _joined(self, session: Session) -> None:
        self._announced = session
        if self._quiet_joins:
            self._quiet_joins -= 1
        else:
            self._emit("open")
        waiters, self._open_waiters = self._open_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(self)

    def _on_event(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._emit(name, *args, *((kwargs,) if kwargs else ()))

    # -- connecting --------------------------------------------------------------------

    def connect(self) -> defer.Deferred[Client]:
        """Connect (unless connected or under way); fires with this client once joined
        (after the ``"open"`` listeners ran)."""

        session = self._client.session
        if session is not None and session is self._announced:
            return defer.succeed(self)
        # fires after "open" (the underlying client's own waiters fire before its event)
        waiter: defer.Deferred[Client] = defer.Deferred()
        self._open_waiters.append(waiter)

        def failed(failure: Failure) -> None:
            if not self._client.reconnect:
                self._emit("error", failure.value)
            if waiter in self._open_waiters:
                self._open_waiters.remove(waiter)
            if not waiter.called:
                waiter.errback(failure)

        self._client.connect().addErrback(failed)
        return waiter

    def close(self, code: int = 1000, data: str | None = None) -> defer.Deferred[None]:
        """Close for good (no reconnect) with WebSocket close ``code`` and reason ``data``
        (shortened to 123 bytes of UTF-8); fires once closed, after ``"close"``."""
        if code != 1000 and not 3000 <= code <= 4999:
            return defer.fail(ValueError(f"close code must be 1000 or 3000-4999, got {code}"))
        reason = truncate_reason(data or "")
        had_session = self._client.session is not None

        def closed(_: Any) -> None:
            if had_session:
                self._emit("close", code, reason)

        return self._client.close(code, reason).addCallback(closed)

    def _session(self) -> defer.Deferred[Session]:
        """The joined session: now, after the connection under way, or NotConnected."""
        session = self._client.session
        if session is not None:
            return defer.succeed(session)
        if self.state in (ClientState.DISCONNECTED, ClientState.GIVEN_UP):
            return defer.fail(NotConnected(f"not connected to {self.address} (client is {self.state.value})"))

        def timed_out(failure: Failure) -> Failure:
            if failure.check(defer.TimeoutError):
                return Failure(NotConnected(f"no session with {self.address} within {self.connect_timeout} s"))
            return failure

        return self._client.connect().addTimeout(self.connect_timeout, self.reactor).addErrback(timed_out)

    # -- requests ----------------------------------------------------------------------

    def call(self, method: str, params: Any = None, timeout: float | None = None) -> defer.Deferred[Any]:
        """Call ``method``; ``timeout`` in milliseconds. Waits for a connection under way."""
        try:
            args, kwargs = _split_params(params, CALL_OPTIONS)
        except (TypeError, ValueError) as error:
            return defer.fail(error)
        seconds = timeout / 1000.0 if timeout else None
        d = self._client.call(method, *args, timeout=seconds, wait_connected=True, **kwargs)
        d.addCallbacks(_plain_result, _as_rpc_failure)
        if self.generate_request_id is not None:
            d.request_id = self.generate_request_id(method, params)  # type: ignore[attr-defined]
        return d

    def notify(self, method: str, params: Any = None) -> defer.Deferred[None]:
        """Run ``method`` with ``params`` without waiting for its answer (a JSON-RPC
        notification, as rpc-websockets sends it): fires once the call is under way; its
        result and any error are dropped."""
        try:
            args, kwargs = _split_params(params, CALL_OPTIONS)
        except (TypeError, ValueError) as error:
            return defer.fail(error)
        self._client.call(method, *args, wait_connected=True, **kwargs).addErrback(lambda _: None)
        return defer.succeed(None)

    def subscribe(self, event: str | Iterable[str]) -> defer.Deferred[dict[str, str]]:
        """Subscribe to one event name or a list of them; listeners are added with :meth:`on`.

        One name: fires with ``{name: "ok"}`` or fails (e.g. :class:`RpcError` for
        ``wamp.error.not_authorized``). A list: fires with ``{name: "ok" or the error text}``.
        As rpc-websockets reports them, a name already subscribed gets ``"socket has already
        been subscribed to event"``, and one the Server façade did not declare (its
        namespace's ``promisifier.rpc.events``) ``"provided event invalid"``, not
        subscribed (on a plain relay, which declares nothing, any name goes).
        """
        return self._each(event, self._subscribe_one)

    def unsubscribe(self, event: str | Iterable[str]) -> defer.Deferred[dict[str, str]]:
        """Unsubscribe like :meth:`subscribe` subscribes (``"not subscribed"`` is an error)."""
        return self._each(event, self._unsubscribe_one)

    def _each(
        self, event: str | Iterable[str], one: Callable[[str], defer.Deferred[str]]
    ) -> defer.Deferred[dict[str, str]]:
        if isinstance(event, str):
            return one(event).addCallbacks(lambda status: {event: status}, _as_rpc_failure)
        names = list(event)

        def status(failure: Failure) -> str:
            return str(failure.value)

        statuses = [one(name).addErrback(status) for name in names]
        return defer.gatherResults(statuses).addCallback(lambda results: dict(zip(names, results)))

    @defer.inlineCallbacks
    def _subscribe_one(self, name: str) -> Any:
        if name in self._subscriptions:
            return "socket has already been subscribed to event"
        yield self._session()
        declared = yield self._declared_events()
        if declared is not None and name not in declared:
            return "provided event invalid"
        handle = yield self._client.subscribe(name, partial(self._on_event, name))
        if name in self._subscriptions:  # subscribed twice at once: keep one
            yield handle.unsubscribe()
        else:
            self._subscriptions[name] = handle
        return "ok"

    def _declared_events(self) -> defer.Deferred[list[str] | None]:
        """The events the namespace's Server façade declared; None without a façade (no
        such procedure, or one this session may not call: a relay's realm with roles)."""

        def undeclared(failure: Failure) -> None:
            failure.trap(ApplicationError)
            return None

        return self._client.call(EVENTS_PROCEDURE, wait_connected=True).addErrback(undeclared)

    def _unsubscribe_one(self, name: str) -> defer.Deferred[str]:
        handle = self._subscriptions.pop(name, None)
        if handle is None:
            return defer.fail(ValueError(f"not subscribed to {name!r}"))
        return handle.unsubscribe().addCallback(lambda _: "ok")

    @defer.inlineCallbacks
    def list_methods(self) -> Any:
        """The procedure URIs registered in the realm (registration meta API), sorted."""
        by_policy = yield self.call("wamp.registration.list")
        ids = [rid for policy in ("exact", "prefix", "wildcard") for rid in (by_policy or {}).get(policy, [])]

        def gone(failure: Failure) -> None:
            failure.trap(ApplicationError)  # unregistered meanwhile
            return None

        details = yield defer.gatherResults([self.call("wamp.registration.get", [rid]).addErrback(gone) for rid in ids])
        return sorted(d["uri"] for d in details if isinstance(d, dict) and "uri" in d)

    @defer.inlineCallbacks
    def login(self, params: dict[str, Any]) -> Any:
        """Join again with ticket authentication (see the module documentation).

        Fires with True once joined with the new credentials; fails with
        :class:`LoginFailed` (the current session, if any, goes on) when refused.
        """
        authid, ticket = login_credentials(params)
        credentials = {"ticket": ticket}
        try:
            session = yield open_session(
                self.address,
                self.realm,
                serializers=self._serializers,
                authid=authid,
                authmethods=["ticket"],
                credentials=credentials,
                timeout=self.connect_timeout,
                reactor=self.reactor,
                tls=self._tls,
            )
        except SessionAborted as error:
            why = {
                "wamp.error.authentication_failed": "wrong credentials",
                "wamp.error.not_authorized": "wrong credentials",
                "wamp.error.no_auth_method": "the router does not accept ticket authentication here",
            }.get(error.reason, error.message or error.reason)
            raise LoginFailed(
                f"login to realm {self.realm!r} at {self.address} failed: {why} ({error.reason})", error.reason
            ) from error
        self._client.set_credentials(authid, ["ticket"], credentials)
        yield self._client.close()
        self._quiet_joins += 1
        try:
            yield self._client.adopt(session)
        except Exception:
            self._quiet_joins = 0
            raise
        return True
