"""rpc-websockets clients in a WAMP realm: the dialect's WebSocket, translated message by message.

Each connection is a real router session (a HELLO goes to the router when the WebSocket
opens), so it shows in the meta API, the metrics and the status page like any other
session. Its requests become WAMP messages:

=====================================  ===================================================
rpc-websockets                         WAMP
=====================================  ===================================================
``method`` (request or notification)   CALL ``uri_prefix + method``
``params`` list / object               positional / keyword arguments
``result``                             RESULT: one argument -> it, several -> the list,
                                       keyword arguments only -> the object
error                                  ERROR: ``no_such_procedure`` / ``invalid_uri`` ->
                                       -32601, ``not_authorized`` -> -32605, any other ->
                                       -32000 with the error URI as message and
                                       ``{"args", "kwargs"}`` as data
``rpc.on`` / ``rpc.off``               SUBSCRIBE / UNSUBSCRIBE ``uri_prefix + name``
``{"notification", "params"}``         EVENT: one object argument (or keyword arguments
                                       only) -> the object, else the argument list
``rpc.login`` ``{authid, ticket}``     a new session with ticket authentication
``__listMethods``                      the realm's procedures under ``uri_prefix``
=====================================  ===================================================

Text frames carry JSON, binary frames msgpack (msgpack-rpc-websockets); the kind is
decided per received message and the answer goes back in the same kind. Server events go
in the kind of the client's last message (JSON before any).
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import defer
from twisted.logger import Logger

from promisifier.bridge import jsonrpc
from promisifier.bridge.session import BridgeSession
from promisifier.transport.closing import CloseCode, truncate_reason
from promisifier.transport.flow import OutgoingBuffer
from promisifier.transport.proxies import TrustedProxies
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import ErrorURI, is_valid_uri
from promisifier.wire.messages import (
    CALL,
    ERROR,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNSUBSCRIBE,
)

__all__ = [
    "TRANSPORT_NAME",
    "RpcWebSocketsFactory",
    "RpcWebSocketsOptions",
    "RpcWebSocketsProtocol",
    "login_credentials",
]

log = Logger(namespace="promisifier.bridge")

#: how these sessions name their transport (meta API, status page, metrics)
TRANSPORT_NAME = "rpc-websockets"

#: the error URI of a structured error {code, message, data} (promisifier.compat.common)
RPC_ERROR_URI = "promisifier.rpc.error"
_AUTHID_KEYS = ("authid", "username", "user", "login")
_connection_ids = itertools.count(1)


@dataclass(frozen=True)
class RpcWebSocketsOptions:
    """What one rpc-websockets listener maps its clients onto."""

    #: namespace (the URL path below the listener's path, "/" for the path itself) -> realm,
    #: or None when the namespace is not served (the upgrade is refused with 404)
    realm_for: Callable[[str], str | None]
    #: put before method and event names to make procedure and topic URIs
    uri_prefix: str = ""
    #: milliseconds a call may take before it fails with wamp.error.timeout (0: none)
    call_timeout: int = 0
    #: realm -> the event names clients may subscribe to, or None: any name their role may
    declared_events: Callable[[str], Collection[str] | None] = lambda realm: None
    #: realm -> the procedure URIs of the realm (for ``__listMethods``)
    procedures: Callable[[str], Collection[str]] = lambda realm: ()
    #: True when ``rpc.login`` is offered (the listener's auth has ticket)
    login: bool = False
    #: False: anonymous sessions are not offered; the connection has no session until login
    anonymous: bool = True


def login_credentials(params: Any) -> tuple[str | None, str] | None:
    """(authid, ticket) of ``rpc.login`` params: ``{"authid", "ticket"}``, or else the
    whole params as JSON in the ticket (a dynamic authenticator decodes them); None when
    they cannot be sent."""
    if type(params) is not dict:
        return None
    authid = next((params[k] for k in _AUTHID_KEYS if isinstance(params.get(k), str) and params[k]), None)
    ticket = params.get("ticket")
    if isinstance(ticket, str):
        return authid, ticket
    try:
        return authid, json.dumps(params, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def _result_value(args: list | None, kwargs: dict | None) -> Any:
    if kwargs:
        if not args:
            return kwargs
        return {"args": args, "kwargs": kwargs}
    if not args:
        return None
    return args[0] if len(args) == 1 else args


def _event_params(args: list | None, kwargs: dict | None) -> Any:
    # The Node server sends one object argument as itself and anything else as the list;
    # its client passes an object to the handler as one argument, a list spread out.
    args = list(args or ())
    if kwargs:
        if not args:
            return kwargs
        args.append(kwargs)
    if len(args) == 1 and type(args[0]) is dict:
        return args[0]
    return args


def _error_body(message: list) -> dict[str, Any]:
    """A WAMP ERROR message as a JSON-RPC error object."""
    uri = message[4]
    args = message[5] if len(message) > 5 else None
    kwargs = message[6] if len(message) > 6 else None
    if uri in (ErrorURI.NO_SUCH_PROCEDURE, ErrorURI.INVALID_URI):
        return jsonrpc.error(jsonrpc.METHOD_NOT_FOUND)
    if uri == ErrorURI.NOT_AUTHORIZED:
        return jsonrpc.error(jsonrpc.METHOD_FORBIDDEN)
    if uri == RPC_ERROR_URI and type(kwargs) is dict and type(kwargs.get("code")) is int:
        # a structured error (the Server façade's create_error): as the method raised it
        return jsonrpc.error(kwargs["code"], kwargs.get("data"), message=str(kwargs.get("message", "")))
    data: dict[str, Any] = {}
    if args:
        data["args"] = args
    if kwargs:
        data["kwargs"] = kwargs
    return jsonrpc.error(jsonrpc.SERVER_ERROR, data or None, message=uri)


class _Encoding:
    """JSON in text frames or msgpack in binary frames."""

    @staticmethod
    def decode(payload: bytes, binary: bool) -> Any:
        if binary:
            return msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=_no_ext)
        return orjson.loads(payload)

    @staticmethod
    def encode(value: Any, binary: bool) -> bytes:
        if binary:
            return msgpack.packb(value, use_bin_type=True)
        return orjson.dumps(value, default=_json_default)


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not supported")


def _json_default(value: Any) -> Any:
    # binary values (from msgpack peers) reach JSON clients as base64 text
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class RpcWebSocketsProtocol(WebSocketServerProtocol):
    """One rpc-websockets client connection, served as a session of a realm."""

    factory: RpcWebSocketsFactory

    def __init__(self) -> None:
        super().__init__()
        self.connection_id = next(_connection_ids)
        self.stats = ConnectionStats()
        self.realm: str | None = None
        self.namespace = "/"
        self.link: BridgeSession | None = None
        #: event name -> subscription id in the current session, and the reverse
        self.events: dict[str, int] = {}
        self._subscriptions: dict[int, str] = {}
        self._binary = False
        self._open = False
        self._started: defer.Deferred[bool] | None = None
        self._outgoing = OutgoingBuffer(None)

    # -- WebSocket -------------------------------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> None:  # noqa: N802 - autobahn API
        forwarded = self.factory.trusted_proxies.forwarded_peer(
            self.transport.getPeer(), request.headers.get("x-forwarded-for")
        )
        if forwarded is not None:
            self.peer = forwarded
        base = self.factory.base_path.rstrip("/")
        path = request.path
        namespace = path[len(base) :] if path.startswith(base) else path
        self.namespace = "/" + namespace.strip("/")
        realm = self.factory.options.realm_for(self.namespace)
        if realm is None:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, f"no namespace {self.namespace!r} here")
        self.realm = realm
        return None

    def onOpen(self) -> None:  # noqa: N802 - autobahn API
        self._open = True
        self._outgoing = OutgoingBuffer(self.transport)
        if self.factory.options.anonymous:
            self.link = self._new_link(None)
            self._started = self.link.joined
        else:
            self._started = defer.succeed(False)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802 - autobahn API
        self.stats.messages_in += 1
        self.stats.bytes_in += len(payload)
        started = self._started
        if started is None or not self._open:
            return
        if started.called:
            self._on_frame(payload, isBinary)
        else:
            # Frames that arrive before the session is up wait for it, in order.
            self._started = started.addCallback(lambda joined: self._on_frame(payload, isBinary) or joined)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
        self._open = False
        code = code if code is not None else CloseCode.ABNORMAL
        link, self.link = self.link, None
        if link is not None:
            link.end(code, reason or "")

    @property
    def congested(self) -> bool:
        return self._outgoing.size() > self.factory.max_outgoing_buffer

    def _send(self, value: Any, binary: bool) -> None:
        if not self._open:
            return
        try:
            payload = _Encoding.encode(value, binary)
        except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError) as error:
            # e.g. a result nested deeper than the encoder goes: the caller gets -32603
            # instead of waiting for an answer that never comes (an event is dropped)
            log.info(
                "connection {connection_id}: cannot encode an answer: {error}",
                connection_id=self.connection_id,
                error=error,
            )
            responses = value if type(value) is list else [value]
            failed = [
                jsonrpc.error_response(response.get("id"), jsonrpc.INTERNAL_ERROR, f"cannot encode the answer: {error}")
                for response in responses
                if type(response) is dict and "jsonrpc" in response
            ]
            if not failed:
                return
            payload = _Encoding.encode(failed if type(value) is list else failed[0], binary)
        self.stats.messages_out += 1
        self.stats.bytes_out += len(payload)
        self.sendMessage(payload, binary)

    def _close(self, code: int, reason: str) -> None:
        # sendCloseFrame: autobahn's sendClose takes only 1000 and 3000-4999, not 1001 etc.
        if self._open and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=int(code), reasonUtf8=truncate_reason(reason).encode("utf-8"), isReply=False)

    # -- requests ----------------------------------------------------------------------

    def _on_frame(self, payload: bytes, binary: bool) -> None:
        self._binary = binary
        try:
            message = _Encoding.decode(payload, binary)
        except Exception as error:  # noqa: BLE001 - every decoder failure is a parse error
            self._send(jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, str(error)), binary)
            return
        if type(message) is list:
            if not message:
                self._send(jsonrpc.error_response(None, jsonrpc.INVALID_REQUEST, "Invalid array"), binary)
                return
            self._run_batch(message, binary)
            return
        self._run(message).addCallback(self._answer, binary)

    def _answer(self, response: Any, binary: bool) -> None:
        if response is not None:
            self._send(response, binary)

    @defer.inlineCallbacks
    def _run_batch(self, messages: list, binary: bool) -> Any:
        # One after the other, as the Node server runs them; one answer with all responses.
        responses = []
        for message in messages:
            response = yield self._run(message)
            if response is not None:
                responses.append(response)
        if responses:
            self._send(responses, binary)

    def _run(self, message: Any) -> defer.Deferred[dict | None]:
        request = jsonrpc.parse_request(message)
        if type(request) is dict:
            return defer.succeed(request)
        assert isinstance(request, jsonrpc.Request)
        method = request.method
        if method == jsonrpc.SUBSCRIBE_METHOD:
            return self._subscribe(request)
        if method == jsonrpc.UNSUBSCRIBE_METHOD:
            return self._unsubscribe(request)
        if method == jsonrpc.LOGIN_METHOD:
            return self._login(request)
        if method == jsonrpc.LIST_METHODS:
            return defer.succeed(self._reply(request, self._list_methods()))
        return self._call(request)

    @staticmethod
    def _reply(request: jsonrpc.Request, result: Any) -> dict | None:
        if request.is_notification:
            return None
        return jsonrpc.result_response(request.id, result)

    @staticmethod
    def _fail(request: jsonrpc.Request, code: int, data: Any = None) -> dict:
        # Errors found before the method runs are answered even to a notification, with
        # id null, as the Node server does (its client drops them).
        return jsonrpc.error_response(request.id, code, data)

    def _call(self, request: jsonrpc.Request) -> defer.Deferred[dict | None]:
        link = self.link
        if link is None or not link.established:
            return defer.succeed(self._fail(request, jsonrpc.METHOD_FORBIDDEN))
        options = self.factory.options
        procedure = options.uri_prefix + request.method
        if not is_valid_uri(procedure):
            return defer.succeed(self._fail(request, jsonrpc.METHOD_NOT_FOUND))
        details: dict[str, Any] = {}
        if options.call_timeout:
            details["timeout"] = options.call_timeout
        params = request.params
        message: list = [CALL, 0, details, procedure]
        if type(params) is list:
            message.append(params)
        elif type(params) is dict:
            message += [[], params]

        def answered(reply: list) -> dict | None:
            if reply[0] == RESULT:
                args = reply[3] if len(reply) > 3 else None
                kwargs = reply[4] if len(reply) > 4 else None
                return self._reply(request, _result_value(args, kwargs))
            if request.is_notification:
                return None
            return {"jsonrpc": "2.0", "error": _error_body(reply), "id": request.id}

        return link.request(message).addCallback(answered)

    def _list_methods(self) -> list[str]:
        options = self.factory.options
        prefix = options.uri_prefix
        names = [jsonrpc.LIST_METHODS]
        if self.realm is not None:
            names += sorted(uri[len(prefix) :] for uri in options.procedures(self.realm) if uri.startswith(prefix))
        if options.login:
            names.append(jsonrpc.LOGIN_METHOD)
        return names

    # -- events ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _subscribe(self, request: jsonrpc.Request) -> Any:
        names = request.params
        if not names:
            return self._fail(request, jsonrpc.SERVER_ERROR)
        if type(names) is not list:
            return self._fail(request, jsonrpc.INVALID_PARAMS, "rpc.on takes a list of event names")
        options = self.factory.options
        declared = options.declared_events(self.realm) if self.realm is not None else ()
        results: dict[str, str] = {}
        for name in names:
            key = name if type(name) is str else json.dumps(name)
            topic = options.uri_prefix + key
            if type(name) is not str or not is_valid_uri(topic) or (declared is not None and name not in declared):
                results[key] = jsonrpc.EVENT_INVALID
                continue
            if name in self.events:
                results[key] = jsonrpc.EVENT_ALREADY_SUBSCRIBED
                continue
            link = self.link
            if link is None or not link.established:
                return self._fail(request, jsonrpc.EVENT_FORBIDDEN)
            reply = yield link.request([SUBSCRIBE, 0, {}, topic])
            if reply[0] == SUBSCRIBED and link is self.link:
                self._subscribed(name, reply[2])
                results[key] = jsonrpc.EVENT_OK
            elif reply[0] == ERROR and reply[4] == ErrorURI.NOT_AUTHORIZED:
                return self._fail(request, jsonrpc.EVENT_FORBIDDEN)
            elif reply[0] == ERROR and reply[4] == ErrorURI.INVALID_URI:
                results[key] = jsonrpc.EVENT_INVALID
            else:
                results[key] = reply[4] if reply[0] == ERROR else jsonrpc.EVENT_INVALID
        return self._reply(request, results)

    @defer.inlineCallbacks
    def _unsubscribe(self, request: jsonrpc.Request) -> Any:
        names = request.params
        if not names:
            return self._fail(request, jsonrpc.SERVER_ERROR)
        if type(names) is not list:
            return self._fail(request, jsonrpc.INVALID_PARAMS, "rpc.off takes a list of event names")
        options = self.factory.options
        declared = options.declared_events(self.realm) if self.realm is not None else ()
        results: dict[str, str] = {}
        for name in names:
            key = name if type(name) is str else json.dumps(name)
            valid = type(name) is str and is_valid_uri(options.uri_prefix + key)
            if not valid or (declared is not None and name not in declared and name not in self.events):
                results[key] = jsonrpc.EVENT_INVALID
                continue
            subscription = self.events.pop(name, None)
            if subscription is None:
                results[key] = jsonrpc.EVENT_NOT_SUBSCRIBED
                continue
            self._subscriptions.pop(subscription, None)
            link = self.link
            if link is not None and link.established:
                yield link.request([UNSUBSCRIBE, 0, subscription])
            results[key] = jsonrpc.EVENT_OK
        return self._reply(request, results)

    # -- login -------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _login(self, request: jsonrpc.Request) -> Any:
        if request.params is None:
            return self._fail(request, jsonrpc.PARAMS_NOT_FOUND)
        if not self.factory.options.login:
            return self._fail(request, jsonrpc.METHOD_NOT_FOUND)
        credentials = login_credentials(request.params)
        if credentials is None:
            return self._fail(request, jsonrpc.INVALID_PARAMS, "rpc.login takes an object")
        link = self._new_link(credentials)
        joined = yield link.joined
        if not joined or not self._open:
            return self._reply(request, False)
        old, self.link = self.link, link
        # The subscriptions move to the new session before the old one leaves, so no
        # event is lost in between.
        names = list(self.events)
        self.events, self._subscriptions = {}, {}
        for name in names:
            reply = yield link.request([SUBSCRIBE, 0, {}, self.factory.options.uri_prefix + name])
            if reply[0] == SUBSCRIBED:
                self._subscribed(name, reply[2])
        if old is not None:
            old.leave()
        return self._reply(request, True)

    def _subscribed(self, name: str, subscription: int) -> None:
        self.events[name] = subscription
        self._subscriptions[subscription] = name

    # -- WAMP sessions -------------------------------------------------------------------

    def _new_link(self, credentials: tuple[str | None, str] | None) -> BridgeSession:
        link = BridgeSession(
            self,
            self.factory.handler_factory,
            self.factory.reactor,
            transport=TRANSPORT_NAME,
            connection_id=self.connection_id,
            peer=self.peer,
            stats=self.stats,
        )
        if credentials is None:
            link.join(self.realm)
        else:
            link.join(self.realm, credentials[0], credentials[1])
        return link

    def on_event(self, session: BridgeSession, message: list) -> None:
        """An EVENT for one of the connection's sessions: a notification, if it is the
        current one."""
        name = self._subscriptions.get(message[1])
        if name is not None and session is self.link:
            args = message[4] if len(message) > 4 else None
            kwargs = message[5] if len(message) > 5 else None
            self._send(jsonrpc.notification(name, _event_params(args, kwargs)), self._binary)

    def on_session_closed(self, session: BridgeSession, code: int, reason: str) -> None:
        """The router ended one of the connection's sessions; the current one takes the
        WebSocket with it (a login attempt's does not)."""
        if session is self.link:
            self._close(code, reason)


class RpcWebSocketsFactory(WebSocketServerFactory):
    """Makes :class:`RpcWebSocketsProtocol` connections whose sessions ``handler_factory``
    makes (the router's: :func:`promisifier.listen.session_factory`)."""

    protocol = RpcWebSocketsProtocol

    def __init__(
        self,
        handler_factory: Callable[[Any], Any],
        options: RpcWebSocketsOptions,
        *,
        base_path: str = "/",
        max_message_size: int = 16 * 1024 * 1024,
        open_handshake_timeout: float = 10.0,
        trusted_proxies: Collection[str] = (),
        keepalive_interval: float = 30.0,
        keepalive_timeout: float = 10.0,
        max_outgoing_buffer: int = 4 * 1024 * 1024,
        reactor: Any = None,
    ) -> None:
        super().__init__(reactor=reactor)
        self.handler_factory = handler_factory
        self.options = options
        #: the URL path the factory's resource is mounted at; below it: the namespace
        self.base_path = base_path
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        self.max_outgoing_buffer = max_outgoing_buffer
        self.setProtocolOptions(
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            openHandshakeTimeout=open_handshake_timeout,
            failByDrop=False,
            closeHandshakeTimeout=5,
            autoPingInterval=keepalive_interval,
            autoPingTimeout=keepalive_timeout,
        )
