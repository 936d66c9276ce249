"""Publish and call over plain HTTP: ``POST {path}/publish`` and ``POST {path}/call``.

Each request is a short WAMP session of the realm (HELLO, the PUBLISH or CALL, GOODBYE),
authorized like any other:

* ``POST {path}/publish`` ``{"topic", "args", "kwargs", "options"}`` -> 200 ``{"id": publication_id}``
* ``POST {path}/call`` ``{"procedure", "args", "kwargs", "options"}`` -> 200 ``{"args", "kwargs"}``

A WAMP error comes back as ``{"error": uri, "args", "kwargs"}`` with a status that says
what kind it is (403 not authorized, 404 no such procedure, 400 invalid argument or URI,
504 timeout, 500 an error the procedure raised). A body over the size limit gets 413, one
that is not the JSON object above 400.

Who is asking:

* no credentials: an anonymous session (when the listener's auth allows anonymous);
* ``Authorization: Bearer TICKET`` (and optionally ``?authid=NAME``): ticket
  authentication through the listener's auth (static principals or its dynamic
  authenticator);
* a signed request, as Crossbar's HTTP bridge signs them: query parameters ``key``,
  ``timestamp`` (ISO 8601 UTC, e.g. ``2026-12-03T14:00:00.000Z``), ``seq``, ``nonce`` and
  ``signature``, the URL-safe base64 of HMAC-SHA256 with the key's secret over
  ``key + timestamp + seq + nonce + body``. A timestamp further than
  ``timestamp_delta_limit`` seconds from now is stale, a (key, nonce) seen within that
  window a replay: both get 401. The session's authid is the key, its role the key's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from promisifier.bridge.session import BridgeSession
from promisifier.listen import ListenerOptions, session_factory
from promisifier.router.auth import AuthConfig, Principal
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import ErrorURI
from promisifier.wire.messages import CALL, ERROR, PUBLISH, PUBLISHED, RESULT

__all__ = ["TRANSPORT_NAME", "HttpBridgeConfig", "HttpBridgeResource", "HttpKey", "sign"]

log = Logger(namespace="promisifier.bridge")

#: how these sessions name their transport (meta API, status page, metrics)
TRANSPORT_NAME = "http"
DEFAULT_TIMESTAMP_DELTA_LIMIT = 300.0
#: most (key, nonce) pairs remembered; beyond, signed requests are refused (503)
MAX_REMEMBERED_NONCES = 100_000

_STATUS_OF_ERROR = {
    ErrorURI.NOT_AUTHORIZED: http.FORBIDDEN,
    ErrorURI.NO_SUCH_PROCEDURE: http.NOT_FOUND,
    ErrorURI.INVALID_ARGUMENT: http.BAD_REQUEST,
    ErrorURI.INVALID_URI: http.BAD_REQUEST,
    ErrorURI.TIMEOUT: http.GATEWAY_TIMEOUT,
    ErrorURI.CANCELED: http.SERVICE_UNAVAILABLE,
    "promisifier.error.limit_exceeded": 429,  # Too Many Requests
}
_connection_ids = itertools.count(1)


@dataclass(frozen=True)
class HttpKey:
    """A key that signs requests: its secret and the role of its sessions."""

    key: str
    secret: str
    role: str


@dataclass(frozen=True)
class HttpBridgeConfig:
    """HTTP publish and call on a listener (TOML ``[listeners.http]``)."""

    #: URL path; ``{path}/publish`` and ``{path}/call`` answer POST
    path: str
    realm: str = "realm1"
    #: keys of signed requests, by key
    keys: Mapping[str, HttpKey] = field(default_factory=dict)
    #: seconds a signature's timestamp may be off the relay's clock
    timestamp_delta_limit: float = DEFAULT_TIMESTAMP_DELTA_LIMIT
    #: milliseconds a call may take (0: no limit)
    call_timeout: int = 0


def sign(secret: str, key: str, timestamp: str, seq: int | str, nonce: int | str, body: bytes) -> str:
    """The signature of a request (what a client puts in ``signature``)."""
    message = b"".join(str(part).encode("utf-8") for part in (key, timestamp, seq, nonce)) + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


class _Refused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class _Nonces:
    """(key, nonce) pairs seen within the timestamp window, forgotten when it has passed."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._seen: set[tuple[str, str]] = set()
        self._order: deque[tuple[float, tuple[str, str]]] = deque()

    def first_use(self, key: str, nonce: str, now: float) -> bool:
        order = self._order
        while order and order[0][0] <= now:
            self._seen.discard(order.popleft()[1])
        pair = (key, nonce)
        if pair in self._seen:
            return False
        if len(self._seen) >= MAX_REMEMBERED_NONCES:
            raise _Refused(http.SERVICE_UNAVAILABLE, "promisifier.error.busy", "too many signed requests")
        self._seen.add(pair)
        # a replay is refused for as long as its timestamp could still pass the check
        order.append((now + 2 * self.window, pair))
        return True


class _Owner:
    """The HTTP request a session belongs to (sessions of requests get no events)."""

    congested = False

    def on_event(self, session: BridgeSession, message: list) -> None:
        pass

    def on_session_closed(self, session: BridgeSession, code: int, reason: str) -> None:
        pass


class HttpBridgeResource(Resource):
    """The ``twisted.web`` resource of :class:`HttpBridgeConfig` (mount it at ``config.path``).

    ``options``: the listener's; its ``auth`` decides bearer tickets and anonymous requests,
    its ``max_message_size`` the largest body accepted.
    """

    isLeaf = True

    def __init__(self, router: Any, config: HttpBridgeConfig, options: ListenerOptions) -> None:
        super().__init__()
        self.router = router
        self.config = config
        self.auth = options.auth if options.auth is not None else router.config.auth
        self.max_body_size = options.max_message_size
        self._sessions = session_factory(router, options.auth)
        keys = {name: Principal(name, key.role, key.secret) for name, key in config.keys.items()}
        self._signed_sessions = session_factory(router, AuthConfig(methods=("ticket",), tickets=keys))
        self._nonces = _Nonces(config.timestamp_delta_limit)

    def render_POST(self, request: Request) -> Any:  # noqa: N802 - twisted.web API
        action = request.postpath[-1].decode("utf-8", "replace") if request.postpath else ""
        if action in ("publish", "call"):
            self._handle(request, action)
        else:
            message = f"no {action!r} here: POST publish or call"
            self._answer(request, http.NOT_FOUND, {"error": "promisifier.error.not_found", "message": message})
        return NOT_DONE_YET

    @defer.inlineCallbacks
    def _handle(self, request: Request, action: str) -> Any:
        try:
            body = self._body(request)
            event = self._parse(body, action)
            session_args = self._credentials(request, body)
        except _Refused as refused:
            log.info(
                "HTTP {action} from {peer} refused: {message}", action=action, peer=_peer(request), message=str(refused)
            )
            self._answer(request, refused.status, {"error": refused.error, "message": str(refused)})
            return
        handler_factory, authid, ticket = session_args
        stats = ConnectionStats(bytes_in=len(body), messages_in=1)
        session = BridgeSession(
            _Owner(),
            handler_factory,
            self.router.reactor,
            transport=TRANSPORT_NAME,
            connection_id=next(_connection_ids),
            peer=_peer(request),
            stats=stats,
        )
        try:
            joined = yield session.join(self.config.realm, authid, ticket)
            if not joined:
                self._answer(
                    request,
                    http.UNAUTHORIZED,
                    {"error": ErrorURI.AUTHENTICATION_FAILED, "message": "not admitted to the realm"},
                )
                return
            if action == "publish":
                options = dict(event.get("options") or {}, acknowledge=True)
                message = [PUBLISH, 0, options, event["topic"], event.get("args") or [], event.get("kwargs") or {}]
            else:
                options = dict(event.get("options") or {})
                if self.config.call_timeout and "timeout" not in options:
                    options["timeout"] = self.config.call_timeout
                message = [CALL, 0, options, event["procedure"], event.get("args") or [], event.get("kwargs") or {}]
            reply = yield session.request(message)
            status, answer = _reply_body(reply)
            stats.messages_out += 1
            stats.bytes_out += self._answer(request, status, answer)
        finally:
            session.leave()

    # -- the request --------------------------------------------------------------------

    def _body(self, request: Request) -> bytes:
        length = request.getHeader("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_size:
            raise _Refused(
                http.REQUEST_ENTITY_TOO_LARGE,
                "promisifier.error.too_large",
                f"the body is over {self.max_body_size} bytes",
            )
        body = request.content.read(self.max_body_size + 1) if request.content is not None else b""
        if len(body) > self.max_body_size:
            raise _Refused(
                http.REQUEST_ENTITY_TOO_LARGE,
                "promisifier.error.too_large",
                f"the body is over {self.max_body_size} bytes",
            )
        return body

    @staticmethod
    def _parse(body: bytes, action: str) -> dict[str, Any]:
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise _Refused(
                http.BAD_REQUEST, "promisifier.error.invalid_json", f"the body is not JSON: {error}"
            ) from None
        if type(event) is not dict:
            raise _Refused(http.BAD_REQUEST, "promisifier.error.invalid_request", "the body must be a JSON object")
        uri_key = "topic" if action == "publish" else "procedure"
        if type(event.get(uri_key)) is not str:
            raise _Refused(http.BAD_REQUEST, "promisifier.error.invalid_request", f"{uri_key!r} (a string) is missing")
        for key, kind in (("args", list), ("kwargs", dict), ("options", dict)):
            if event.get(key) is not None and type(event[key]) is not kind:
                raise _Refused(
                    http.BAD_REQUEST,
                    "promisifier.error.invalid_request",
                    f"{key!r} must be a JSON {'array' if kind is list else 'object'}",
                )
        return event

    def _credentials(self, request: Request, body: bytes) -> tuple[Any, str | None, str | None]:
        """(handler factory, authid, ticket) of the session the request runs in."""
        args = {
            name.decode("utf-8", "replace"): values[0].decode("utf-8", "replace")
            for name, values in request.args.items()
            if values
        }
        if "signature" in args or "key" in args:
            return self._signed(args, body)
        authorization = request.getHeader("authorization")
        if authorization:
            scheme, _, ticket = authorization.partition(" ")
            if scheme.lower() != "bearer" or not ticket.strip():
                raise _Refused(
                    http.UNAUTHORIZED, ErrorURI.AUTHENTICATION_FAILED, "Authorization must be 'Bearer TICKET'"
                )
            ticket = ticket.strip()
            return self._sessions, args.get("authid") or self._authid_of(ticket), ticket
        return self._sessions, None, None

    def _authid_of(self, ticket: str) -> str | None:
        for principal in self.auth.tickets.values():
            if hmac.compare_digest(principal.secret.encode("utf-8"), ticket.encode("utf-8")):
                return principal.authid
        return None

    def _signed(self, args: dict[str, str], body: bytes) -> tuple[Any, str | None, str | None]:
        missing = [name for name in ("key", "timestamp", "seq", "nonce", "signature") if not args.get(name)]
        if missing:
            raise _Refused(
                http.BAD_REQUEST, "promisifier.error.invalid_request", f"a signed request needs {', '.join(missing)}"
            )
        key = self.config.keys.get(args["key"])
        expected = sign(key.secret, args["key"], args["timestamp"], args["seq"], args["nonce"], body) if key else ""
        given = args["signature"].strip()
        if key is None or not _same_signature(given, expected):
            raise _Refused(http.UNAUTHORIZED, ErrorURI.AUTHENTICATION_FAILED, "invalid signature")
        try:
            stamp = datetime.fromisoformat(args["timestamp"])
        except ValueError:
            raise _Refused(http.BAD_REQUEST, "promisifier.error.invalid_request", "timestamp is not ISO 8601") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        now = self.router.reactor.seconds()
        if abs(now - stamp.timestamp()) > self.config.timestamp_delta_limit:
            raise _Refused(http.UNAUTHORIZED, ErrorURI.AUTHENTICATION_FAILED, "stale timestamp")
        if not self._nonces.first_use(key.key, args["nonce"], now):
            raise _Refused(http.UNAUTHORIZED, ErrorURI.AUTHENTICATION_FAILED, "replayed request (nonce already used)")
        return self._signed_sessions, key.key, key.secret

    @staticmethod
    def _answer(request: Request, status: int, body: dict[str, Any]) -> int:
        """Send the JSON answer; its length in bytes (0 when the client is gone)."""
        if request.finished or getattr(request, "_disconnected", False):
            return 0
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        # one line: what curl prints ends with a newline
        payload = orjson.dumps(body, default=_json_default) + b"\n"
        request.write(payload)
        request.finish()
        return len(payload)


def _reply_body(reply: list) -> tuple[int, dict[str, Any]]:
    if reply[0] == PUBLISHED:
        return http.OK, {"id": reply[2]}
    if reply[0] == RESULT:
        return http.OK, {"args": reply[3] if len(reply) > 3 else [], "kwargs": reply[4] if len(reply) > 4 else {}}
    assert reply[0] == ERROR
    uri = reply[4]
    body = {"error": uri, "args": reply[5] if len(reply) > 5 else [], "kwargs": reply[6] if len(reply) > 6 else {}}
    return _STATUS_OF_ERROR.get(uri, http.INTERNAL_SERVER_ERROR), body


def _same_signature(given: str, expected: str) -> bool:
    try:
        # either base64 alphabet, padded or not
        raw = base64.urlsafe_b64decode(given.replace("+", "-").replace("/", "_") + "=" * (-len(given) % 4))
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(raw, base64.urlsafe_b64decode(expected))


def _peer(request: Request) -> str:
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    return f"tcp:{host}:{getattr(address, 'port', 0)}" if host else str(address)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
