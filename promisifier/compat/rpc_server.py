"""An rpc-websockets style server over the embeddable :class:`promisifier.Router`.

::

    from promisifier.compat.rpc_server import Server

    server = Server("127.0.0.1", 8080)                  # WAMP on every path of the port
    server.register("sum", lambda a, b: a + b)           # namespace "/" (realm realm1)
    server.register("account", get_account).protected()  # only for logged-in clients
    server.set_auth(lambda params: params.get("password") == "secret")
    server.event("feed_updated")
    server.emit("feed_updated", {"id": 7})
    chat = server.of("/chat")                            # namespace "/chat" = realm "chat"
    chat.register("post", post)

Remote clients are clients of the ``rpc-websockets`` npm package (Node or browser, JSON
or msgpack frames: the dialect of :mod:`promisifier.bridge.rpc_websockets`, so a program
that used the Node server keeps its JS clients) and any WAMP client, on every URL path of
the port: a client that offers a ``wamp.2.*`` WebSocket subprotocol speaks WAMP, any
other the rpc-websockets dialect. The path is the namespace (``ws://host:port/chat`` or
``/ws/chat`` -> realm ``chat``; see :mod:`promisifier.compat.common`); a namespace the
server has not made (``of()``) is refused (404). For rpc-websockets clients, ``rpc.on``
accepts the declared events only (others: ``"provided event invalid"``), and
``__listMethods`` lists the namespace's procedures.
:class:`promisifier.compat.rpc_client.Client` speaks WAMP to it.

**Methods** get the call's positional and keyword arguments: ``fn(*args, **kwargs)`` (a
list of params arrives as positional arguments, a dict as keyword arguments). They may
return a value or a Deferred, or be ``async def``. ``raise server.create_error(code,
message, data)`` answers with a structured error: ERROR ``promisifier.rpc.error`` with
kwargs ``code``, ``message`` and ``data`` that reaches the caller intact (JSON or
msgpack). Registering a name again replaces its function.

**Namespaces** are realms. Each namespace the server uses gets roles through the router's
configuration (``router.reload``): ``anonymous`` and ``authenticated`` with a dynamic
authorizer that reads the server's declarations live, and ``promisifier.rpc.server`` for
the server's own in-process session. Remote sessions may do what they could on a plain
relay, except:

* call (or notify, i.e. publish to) a *protected* method unless logged in;
* subscribe to a *protected* event unless logged in (nor with a prefix or wildcard
  pattern while the namespace has protected events);
* publish to a declared event (only the server emits those), register a name the
  server registered, or call the ``wamp.session.kill*`` meta procedures.

Decisions are taken per request, so ``protected()`` and ``public()`` apply at once to new
calls and subscriptions (a subscription made while an event was public stays).

**Login.** ``set_auth(fn, namespace)``: a client's ``login(params)`` joins with WAMP
ticket authentication; the router's dynamic ticket authenticator decodes the params and
calls ``fn(params)`` (bool, or a Deferred of one). True makes the session's role
``authenticated`` (authid: the client's ``authid``/``username``). Static ticket principals
of the router configuration are checked first.

**Events** (:meth:`Server.on`): ``"listening"`` (the listening port), ``"connection"``
and ``"disconnection"`` (a :class:`ConnectedClient`), ``"close"`` (no arguments),
``"error"`` (the exception: a refused registration, a failing auth function, ...).

``Server(router=router)`` serves namespaces on a :class:`promisifier.Router` the program
already has (it must be the embeddable one, with ``router.session``): the façade then
does not listen (nor emit ``"listening"``), adds ``ticket`` with its authenticator to the
router's ``config.auth`` (the previous ticket authenticator still answers for realms
without ``set_auth``), and gives the realms of its namespaces the roles above. Other roles
of such a realm stay, with their own permissions (protected() does not concern them); a
realm without roles (everything allowed) gets just these three, so its sessions of other
roles are closed. A listener with its own ``AuthConfig`` keeps it; a relay's config
reload replaces these settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Self

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from promisifier.bridge.dialects import BySubprotocol
from promisifier.bridge.mount import RpcWebSocketsConfig, realm_procedures, rpc_websockets_resource
from promisifier.client.callee import as_deferred
from promisifier.client.errors import ConnectionLost, NotConnected
from promisifier.client.listeners import Listeners
from promisifier.client.session import Session
from promisifier.client.user_errors import log_user_error
from promisifier.compat.common import (
    DEFAULT_REALM,
    EVENTS_PROCEDURE,
    Outcome,
    RpcError,
    decode_login,
    namespace_for_path,
    normalize_namespace,
    realm_for_namespace,
)
from promisifier.embed import Router
from promisifier.relay.endpoints import with_backlog
from promisifier.router.auth import AuthConfig, load_callable
from promisifier.router.authz import ALLOW_ALL, RoleConfig
from promisifier.router.router_config import RealmConfig, RouterConfig
from promisifier.transport.handshake import HandshakeDeadlineSite
from promisifier.wire import ErrorURI

__all__ = [
    "AUTHENTICATED_ROLE",
    "SERVER_ROLE",
    "ConnectedClient",
    "EventHandle",
    "MethodHandle",
    "Namespace",
    "Server",
]

log = Logger(namespace="promisifier.compat.rpc")

#: the role of sessions that logged in through set_auth
AUTHENTICATED_ROLE = "authenticated"
#: the role of the server's own in-process sessions
SERVER_ROLE = "promisifier.rpc.server"
SERVER_EVENTS = ("listening", "connection", "disconnection", "close", "error")
#: meta procedures remote sessions of a namespace may not call
_DENIED_META = frozenset(("wamp.session.kill", "wamp.session.kill_by_authid", "wamp.session.kill_by_authrole"))


@dataclass(frozen=True)
class ConnectedClient:
    """A remote session joined to a namespace."""

    id: int
    namespace: str
    authid: str | None
    authrole: str | None
    peer: str | None = None

    @property
    def authenticated(self) -> bool:
        """True when the session logged in (role ``authenticated``)."""
        return self.authrole == AUTHENTICATED_ROLE


class _Handle:
    def __init__(self, namespace: Namespace, name: str) -> None:
        self.namespace = namespace
        self.name = name
        #: True when only logged-in sessions may use it
        self.is_protected = False

    def protected(self) -> Self:
        """Only sessions that logged in may use it from now on."""
        self.is_protected = True
        return self

    def public(self) -> Self:
        """Every session may use it (the default)."""
        self.is_protected = False
        return self


class MethodHandle(_Handle):
    """A method of a namespace (the answer to :meth:`Server.register`)."""

    def __init__(self, namespace: Namespace, name: str, fn: Callable[..., Any]) -> None:
        super().__init__(namespace, name)
        self.fn = fn
        self._registered: Outcome | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return as_deferred(self.fn(*args, **kwargs))

    def when_registered(self) -> defer.Deferred[MethodHandle]:
        """Fires with this handle once the router has the registration (fails if refused)."""
        assert self._registered is not None
        return self._registered.wait().addCallback(lambda _: self)

    def __repr__(self) -> str:
        return f"<MethodHandle {self.name!r} in {self.namespace.name!r} protected={self.is_protected}>"


class EventHandle(_Handle):
    """An event of a namespace (the answer to :meth:`Server.event`)."""

    def __repr__(self) -> str:
        return f"<EventHandle {self.name!r} in {self.namespace.name!r} protected={self.is_protected}>"


class Namespace:
    """One namespace (realm) of a :class:`Server`: its methods, events and clients."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self._name = name
        #: the realm of this namespace
        self.realm = realm_for_namespace(name)
        self.methods: dict[str, MethodHandle] = {}
        self.events: dict[str, EventHandle] = {}
        #: the login check of set_auth, or None (login refused)
        self.auth: Callable[[dict[str, Any]], Any] | None = None
        self.session: Session | None = None
        self.closed = False
        #: remote sessions seen joining (for "disconnection" with their details)
        self._known: dict[int, ConnectedClient] = {}
        self._session = Outcome(server.router.session(self.realm, authrole=SERVER_ROLE))
        self._session.wait().addCallbacks(self._joined, self._join_failed)

    def __repr__(self) -> str:
        return f"<Namespace {self._name!r} realm={self.realm!r}>"

    @property
    def name(self) -> str:
        return self._name

    def when_ready(self) -> defer.Deferred[Namespace]:
        """Fires with this namespace once its in-process session has joined and listens
        for clients joining and leaving."""
        return self._session.wait().addCallback(lambda _: self._meta_ready.wait()).addCallback(lambda _: self)

    # -- methods and events ---------------------------------------------------------------

    def register(self, method: str, fn: Callable[..., Any]) -> MethodHandle:
        """Offer ``fn(*args, **kwargs)`` as ``method``; a handle with protected()/public()."""
        if not callable(fn):
            raise TypeError(f"the method function must be callable, got {fn!r}")
        handle = self.methods.get(method)
        if handle is not None:
            handle.fn = fn
            return handle
        handle = MethodHandle(self, method, fn)
        self.methods[method] = handle

        def register(session: Session) -> defer.Deferred[Any]:
            return session.register(method, handle)

        def refused(failure: Failure) -> Failure:
            if self.methods.get(method) is handle:
                del self.methods[method]
            self.server._emit("error", failure.value)
            return failure

        handle._registered = Outcome(self._session.wait().addCallback(register).addErrback(refused))
        return handle

    def event(self, name: str) -> EventHandle:
        """Declare the event ``name``; a handle with protected()/public()."""
        handle = self.events.get(name)
        if handle is None:
            handle = self.events[name] = EventHandle(self, name)
        return handle

    def event_list(self) -> list[str]:
        """The declared event names."""
        return list(self.events)

    def emit(self, name: str, *params: Any) -> defer.Deferred[None]:
        """Publish the event ``name`` with ``params`` to the namespace's subscribers."""
        return (
            self._session.wait().addCallback(lambda session: session.publish(name, *params)).addCallback(lambda _: None)
        )

    def set_auth(self, fn: Callable[[dict[str, Any]], Any] | None) -> None:
        """``fn(params)`` -> bool (or a Deferred of one) decides a client's login."""
        self.auth = fn

    # -- clients -------------------------------------------------------------------------

    def connected(self) -> dict[int, ConnectedClient]:
        """The remote sessions joined now, by session id."""
        realm = self.server.router.realms.get(self.realm)
        if realm is None:
            return {}
        return {
            sid: ConnectedClient(sid, self._name, s.authid, s.authrole, getattr(s.peer, "peer", None))
            for sid, s in realm.sessions.items()
            if s.authrole != SERVER_ROLE
        }

    def clients(self) -> list[ConnectedClient]:
        """The remote sessions joined now."""
        return list(self.connected().values())

    # -- authorization (the dynamic authorizer of the namespace's roles) ------------------

    def authorize(self, details: dict, uri: str, action: str) -> bool:
        logged_in = details.get("authrole") == AUTHENTICATED_ROLE
        if uri.startswith("wamp."):
            if action == "call":
                return uri not in _DENIED_META
            return action == "subscribe"
        method = self.methods.get(uri)
        if action == "call":
            return method is None or not method.is_protected or logged_in
        if action == "publish":
            if uri in self.events:
                return False
            return method is None or not method.is_protected or logged_in
        if action == "subscribe":
            if details.get("match", "exact") != "exact":
                return logged_in or not any(e.is_protected for e in self.events.values())
            event = self.events.get(uri)
            return event is None or not event.is_protected or logged_in
        if action == "register":
            return method is None
        return False

    # -- the in-process session -------------------------------------------------------------

    def _joined(self, session: Session) -> None:
        self.session = session
        # what Client.subscribe asks to report undeclared events as rpc-websockets does
        session.register(EVENTS_PROCEDURE, self.event_list).addErrback(
            lambda failure: self.server._emit("error", failure.value)
        )
        on_join = session.subscribe("wamp.session.on_join", self._on_join)
        on_leave = session.subscribe("wamp.session.on_leave", self._on_leave)
        self._meta_ready = Outcome(defer.gatherResults([on_join, on_leave], consumeErrors=True))

    def _join_failed(self, failure: Failure) -> None:
        self._meta_ready = Outcome(defer.fail(failure))
        self.server._emit("error", failure.value)

    def _on_join(self, details: dict) -> None:
        if not isinstance(details, dict) or details.get("authrole") == SERVER_ROLE:
            return
        transport = details.get("transport")
        client = ConnectedClient(
            details.get("session"),  # type: ignore[arg-type]
            self._name,
            details.get("authid"),
            details.get("authrole"),
            transport.get("peer") if isinstance(transport, dict) else None,
        )
        self._known[client.id] = client
        self.server._emit("connection", client)

    def _on_leave(self, session_id: int, authid: str | None = None, authrole: str | None = None) -> None:
        self._lost(session_id)

    def _lost(self, session_id: int) -> None:
        client = self._known.pop(session_id, None)
        if client is not None:
            self.server._emit("disconnection", client)

    def _close(self, reason: str, message: str) -> None:
        """Close every session of the realm (ours included)."""
        self.closed = True
        realm = self.server.router.realms.get(self.realm)
        if realm is None:
            return
        remote = [sid for sid, s in realm.sessions.items() if s.authrole != SERVER_ROLE]
        realm.close(reason, message)
        for sid in remote:
            self._lost(sid)

    def _leave(self) -> defer.Deferred[None]:
        """Leave with the in-process session (the remote clients stay)."""
        self.closed = True

        def leave(session: Session) -> Any:
            if session.is_joined:
                return session.leave().addErrback(lambda f: f.trap(ConnectionLost, NotConnected))
            return None

        return self._session.wait().addCallback(leave).addErrback(lambda _: None).addCallback(lambda _: None)


class Server:
    """An rpc-websockets style server (see the module documentation).

    ``Server(host, port)`` makes a router with realm ``realm1`` and listens on
    ``host:port`` with WAMP on every URL path (``port=0`` picks a free port: see
    :attr:`port`). ``Server(router=router)`` uses a router the program already runs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = 8080,
        *,
        router: Router | None = None,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.host = host
        self._listeners = Listeners(
            SERVER_EVENTS, log_user_error, lambda event: f"server listener of {event!r}", "server "
        )
        self._namespaces: dict[str, Namespace] = {}
        self._fallback_ticket: Callable[..., Any] | None = None
        self._listening_port: Any = None
        self._closing: defer.Deferred[None] | None = None
        if router is None:
            self.owns_router = True
            config = RouterConfig(
                realms=(RealmConfig(DEFAULT_REALM, roles=self._roles("/", "anonymous")),),
                auth=AuthConfig(methods=("anonymous", "ticket"), ticket_authenticator=self._authenticate),
            )
            self.router = Router(config, reactor=reactor)
            self._managed = {DEFAULT_REALM}
        else:
            if not hasattr(router, "session"):
                raise TypeError("Server(router=...) needs promisifier.Router (the embeddable one, with .session)")
            self.owns_router = False
            self.router = router
            self._managed = set()
        self._default = self.of("/")
        if router is None:
            listening = serverFromString(reactor, with_backlog(f"tcp:{port or 0}:interface={host}")).listen(
                self._site()
            )
        else:
            listening = defer.succeed(None)
        self._listening = Outcome(listening.addCallbacks(self._now_listening, self._listen_failed))

    def __repr__(self) -> str:
        return f"<Server {self.host}:{self.port} namespaces={list(self._namespaces)}>"

    # -- facts and events --------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The TCP port listened on (None before listening, or with ``router=``)."""
        if self._listening_port is None:
            return None
        return self._listening_port.getHost().port

    def url(self, namespace: str = "/") -> str:
        """The WebSocket URL of ``namespace`` on this server's port."""
        if self.port is None:
            raise RuntimeError("this server does not listen (not yet, or it serves an existing router)")
        return f"ws://{self.host}:{self.port}{normalize_namespace(namespace)}"

    def on(self, event: str, fn: Callable[..., Any]) -> None:
        """Call ``fn`` on listening, connection, disconnection, close or error."""
        self._listeners.add(event, fn)

    def off(self, event: str, fn: Callable[..., Any] | None = None) -> None:
        """Remove ``fn`` (or every listener) from ``event``."""
        self._listeners.remove(event, fn)

    def _emit(self, event: str, *args: Any) -> None:
        if event == "error" and not self._listeners.has("error"):
            log.warn("rpc server error: {error}", error=args[0] if args else None)
        self._listeners.emit(event, *args)

    def when_ready(self) -> defer.Deferred[Server]:
        """Fires with the server once it listens and the default namespace is ready."""
        return self._listening.wait().addCallback(lambda _: self._default.when_ready()).addCallback(lambda _: self)

    # -- namespaces --------------------------------------------------------------------

    def of(self, namespace: str) -> Namespace:
        """The namespace ``namespace`` (made on first use, with its realm)."""
        name = normalize_namespace(namespace)
        ns = self._namespaces.get(name)
        if ns is None:
            self._manage_realm(name)
            ns = self._namespaces[name] = Namespace(self, name)
        return ns

    def register(self, method: str, fn: Callable[..., Any], namespace: str = "/") -> MethodHandle:
        """Offer ``fn`` as ``method`` in ``namespace``; a handle with protected()/public()."""
        return self.of(namespace).register(method, fn)

    def event(self, name: str, namespace: str = "/") -> EventHandle:
        """Declare the event ``name`` in ``namespace``; a handle with protected()/public()."""
        return self.of(namespace).event(name)

    def emit(self, name: str, *params: Any) -> defer.Deferred[None]:
        """Emit the event ``name`` with ``params`` in the default namespace."""
        return self._default.emit(name, *params)

    def event_list(self, namespace: str = "/") -> list[str]:
        """The events declared in ``namespace``."""
        return self.of(namespace).event_list()

    def set_auth(self, fn: Callable[[dict[str, Any]], Any], namespace: str = "/") -> None:
        """``fn(params)`` -> bool (or a Deferred) decides logins into ``namespace``."""
        self.of(namespace).set_auth(fn)

    @staticmethod
    def create_error(code: int, message: str, data: Any = None) -> RpcError:
        """A structured error to raise in a method; the caller gets code, message, data."""
        return RpcError(code, message, data)

    def close_namespace(self, namespace: str) -> None:
        """Close every session of ``namespace`` (GOODBYE ``wamp.close.close_realm``) and
        forget its methods and events; ``of(namespace)`` makes it anew."""
        name = normalize_namespace(namespace)
        ns = self._namespaces.pop(name, None)
        if ns is not None:
            ns._close(ErrorURI.CLOSE_CLOSE_REALM, f"namespace {name} was closed")
        if name == "/":
            self._default = self.of("/")

    def close(self) -> defer.Deferred[None]:
        """Stop: with its own router, stop listening and close every session; with
        ``router=``, leave with the server's sessions. Emits ``"close"`` when done."""
        if self._closing is not None:
            return self._closing
        self._closing = d = self._close()
        return d

    @defer.inlineCallbacks
    def _close(self) -> Any:
        namespaces, self._namespaces = list(self._namespaces.values()), {}
        if self.owns_router:
            port, self._listening_port = self._listening_port, None
            if port is not None:
                yield defer.maybeDeferred(port.stopListening)
            for ns in namespaces:
                ns.closed = True
            yield self.router.stop()
            for ns in namespaces:
                for sid in list(ns._known):
                    ns._lost(sid)
        else:
            yield defer.gatherResults([ns._leave() for ns in namespaces])
        self._emit("close")

    # -- listening -----------------------------------------------------------------------

    def _site(self) -> Site:
        """WAMP and the rpc-websockets dialect on every path of the port (the client's
        subprotocol decides); the path is the namespace."""
        rpc = rpc_websockets_resource(
            self.router,
            RpcWebSocketsConfig(path="/"),
            realm_for=self._realm_for_path,
            declared_events=self._declared_events,
            procedures=self._procedures,
        )
        root = BySubprotocol(self.router.resource(), rpc)
        return HandshakeDeadlineSite(root, self.router.config.open_handshake_timeout, reactor=self.reactor)

    def _namespace_of_realm(self, realm: str) -> Namespace | None:
        return next((ns for ns in self._namespaces.values() if ns.realm == realm), None)

    def _realm_for_path(self, path: str) -> str | None:
        try:
            namespace = namespace_for_path(path)
        except ValueError:
            return None
        return self._namespaces[namespace].realm if namespace in self._namespaces else None

    def _declared_events(self, realm: str) -> list[str]:
        ns = self._namespace_of_realm(realm)
        return ns.event_list() if ns is not None else []

    def _procedures(self, realm: str) -> list[str]:
        uris = realm_procedures(self.router, realm)
        return [uri for uri in uris if not uri.startswith(("promisifier.", "wamp."))]

    def _now_listening(self, port: Any) -> Any:
        if port is None:
            return None
        self._listening_port = port
        # on the next turn: listeners added right after the constructor hear it
        self.reactor.callLater(0, self._emit, "listening", port)
        return port

    def _listen_failed(self, failure: Failure) -> Failure:
        self.reactor.callLater(0, self._emit, "error", failure.value)
        return failure

    # -- realms and authentication --------------------------------------------------------

    def _roles(self, namespace: str, anonymous_role: str) -> tuple[RoleConfig, ...]:
        check = partial(self._authorize, namespace)
        return (
            RoleConfig(anonymous_role, authorizer=check),
            RoleConfig(AUTHENTICATED_ROLE, authorizer=check),
            RoleConfig(SERVER_ROLE, permissions=(ALLOW_ALL,)),
        )

    def _authorize(self, namespace: str, details: dict, uri: str, action: str) -> bool:
        ns = self._namespaces.get(namespace)
        if ns is None or ns.closed:
            return not uri.startswith("wamp.session.kill")
        return ns.authorize(details, uri, action)

    def _manage_realm(self, namespace: str) -> None:
        """Give the namespace's realm the façade's roles (adding the realm if needed)."""
        realm_name = realm_for_namespace(namespace)
        if realm_name in self._managed:
            return
        config = self.router.config
        ours = self._roles(namespace, config.auth.anonymous_role)
        names = {role.name for role in ours}
        realms = list(config.realms)
        for index, realm in enumerate(realms):
            if realm.name == realm_name:
                kept = tuple(role for role in (realm.roles or ()) if role.name not in names)
                realms[index] = dataclasses.replace(realm, roles=kept + ours)
                break
        else:
            realms.append(RealmConfig(realm_name, strict_uris=config.strict_uris, roles=ours))
        self.router.reload(dataclasses.replace(config, realms=tuple(realms), auth=self._auth_config(config.auth)))
        self._managed.add(realm_name)

    def _auth_config(self, auth: AuthConfig) -> AuthConfig:
        if auth.ticket_authenticator == self._authenticate:
            return auth
        if auth.ticket_authenticator is not None:
            self._fallback_ticket = load_callable(auth.ticket_authenticator)
        methods = auth.methods if "ticket" in auth.methods else (*auth.methods, "ticket")
        return dataclasses.replace(auth, methods=methods, ticket_authenticator=self._authenticate)

    def _authenticate(self, realm: str, authid: str, ticket: str, details: dict) -> Any:
        """The router's dynamic ticket authenticator: a namespace's set_auth decides."""
        ns = next((n for n in self._namespaces.values() if n.realm == realm), None)
        if ns is None or ns.auth is None:
            if self._fallback_ticket is not None:
                return self._fallback_ticket(realm, authid, ticket, details)
            return None
        params = decode_login(authid, ticket)
        check = ns.auth

        def decided(ok: Any) -> Any:
            if not ok:
                return None
            name = authid or next((params[k] for k in ("username", "user") if isinstance(params.get(k), str)), "")
            return {"role": AUTHENTICATED_ROLE, "authid": name or "authenticated"}

        def failed(failure: Failure) -> None:
            self._emit("error", failure.value)
            return None

        return defer.maybeDeferred(lambda: as_deferred(check(params))).addCallbacks(decided, failed)
