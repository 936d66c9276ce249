"""The client's WAMP session: a state machine and one table of requests waiting for answers.

Free of I/O in the manner of the router: a :class:`Session` receives checked message lists
through :meth:`Session.on_message` and sends through its connection's ``send``; time comes
only from an injected clock (``IReactorTime``). It can therefore be driven message by
message in tests, with a fake connection and ``twisted.internet.task.Clock``.

Every request that waits for an answer (CALL, REGISTER, UNREGISTER, SUBSCRIBE,
UNSUBSCRIBE, acknowledged PUBLISH) has one entry in one table, keyed by its request id.
The entry is removed exactly once: by the answer, by a local timeout, by cancel, or when
the session ends (its Deferred then fails with :class:`ConnectionLost`). Answers for ids
not in the table (late, duplicated, or never asked for) are ignored and logged at debug.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client import features
from promisifier.client.auth import AuthenticationError, answer_challenge, default_authmethods
from promisifier.client.callee import Invocations, as_deferred, payload
from promisifier.client.errors import (
    TIMEOUT_URI,
    ApplicationError,
    CallTimeout,
    ConnectionClosed,
    ConnectionLost,
    NotConnected,
    SessionAborted,
)
from promisifier.client.types import CallResult, Registration, SessionState, SessionStats, Subscription
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import ErrorURI, IdSequence, ProtocolError
from promisifier.wire.messages import (
    ABORT,
    AUTHENTICATE,
    CALL,
    CANCEL,
    CHALLENGE,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INTERRUPT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTER,
    UNREGISTERED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    WELCOME,
    message_name,
)

log = Logger(namespace="promisifier.client")

CANCEL_MODES = ("skip", "kill", "killnowait")
MATCH_POLICIES = ("exact", "prefix", "wildcard")
INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")

# answer type -> the request type it answers
_ANSWERS = {
    RESULT: CALL,
    REGISTERED: REGISTER,
    UNREGISTERED: UNREGISTER,
    SUBSCRIBED: SUBSCRIBE,
    UNSUBSCRIBED: UNSUBSCRIBE,
    PUBLISHED: PUBLISH,
}


class Connection(Protocol):
    """What a session needs of its connection (a :class:`WampClientProtocol` or a fake)."""

    stats: ConnectionStats
    peer: str
    connected: bool
    close_code: int
    close_reason: str

    @property
    def subprotocol(self) -> str | None: ...

    def send(self, message: list) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...

    def drop(self) -> None: ...


class _Request:
    """One entry of the correlation table."""

    __slots__ = ("kind", "deferred", "timer", "on_progress", "target", "data")

    def __init__(self, kind: int, deferred: defer.Deferred[Any], target: str, data: Any = None) -> None:
        self.kind = kind
        self.deferred = deferred
        #: procedure or topic URI (for error texts)
        self.target = target
        self.data = data
        self.timer: IDelayedCall | None = None
        self.on_progress: Callable[..., Any] | None = None


class Session:
    """A WAMP client session on one connection.

    Made by :func:`promisifier.client.connect`, which also joins it. Attributes once
    joined: ``session_id``, ``realm``, ``authid``, ``authrole``, ``authmethod``,
    ``router_roles`` (WELCOME.Details.roles) and ``router_features`` (role name -> set of
    feature names announced by the router).
    """

    def __init__(
        self,
        connection: Connection,
        realm: str,
        *,
        authid: str | None = None,
        authmethods: list[str] | tuple[str, ...] | None = None,
        credentials: dict[str, Any] | None = None,
        clock: IReactorTime | None = None,
        goodbye_timeout: float = 5.0,
        debug: bool = False,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as default_reactor

            clock = default_reactor  # type: ignore[assignment]
        self.connection = connection
        self.realm = realm
        self.clock: IReactorTime = clock  # type: ignore[assignment]
        self.goodbye_timeout = goodbye_timeout
        self.debug = debug
        self.state = SessionState.NEW
        self.session_id: int | None = None
        self.authid: str | None = authid
        self.authrole: str | None = None
        self.authmethod: str | None = None
        self.welcome_details: dict[str, Any] = {}
        self.router_roles: dict[str, Any] = {}
        self.router_features: dict[str, frozenset[str]] = {}
        self._authmethods = list(authmethods) if authmethods else default_authmethods(credentials)
        self._credentials = credentials
        self._cancel_mode = "kill"
        self._ids = IdSequence()
        self._requests: dict[int, _Request] = {}
        self._registrations: dict[int, Registration] = {}
        self._subscriptions: dict[int, list[Subscription]] = {}
        self._invocations = Invocations(self._send, debug=debug)
        self._calls_made = 0
        self._events_received = 0
        self._publications_sent = 0
        self._join_d: defer.Deferred[Session] | None = None
        self._leave_d: defer.Deferred[str] | None = None
        self._goodbye_reason: str | None = None
        self._goodbye_timer: IDelayedCall | None = None
        self._end_waiters: list[defer.Deferred[tuple[int, str]]] = []
        self._listeners: dict[str, list[Callable[..., Any]]] = {"join": [], "leave": [], "close": []}
        self._dispatch: dict[int, Callable[[list], None]] = {
            RESULT: self._on_result,
            ERROR: self._on_error,
            REGISTERED: self._on_registered,
            UNREGISTERED: self._on_unregistered,
            SUBSCRIBED: self._on_subscribed,
            UNSUBSCRIBED: self._on_unsubscribed,
            PUBLISHED: self._on_published,
            EVENT: self._on_event,
            INVOCATION: self._on_invocation,
            INTERRUPT: self._invocations.on_interrupt,
            GOODBYE: self._on_goodbye,
            ABORT: self._on_abort,
        }

    def __repr__(self) -> str:
        return f"<Session {self.session_id} {self.state.value} realm={self.realm!r}>"

    # -- facts ------------------------------------------------------------------------

    @property
    def is_joined(self) -> bool:
        """True while the session is joined to its realm."""
        return self.state is SessionState.JOINED

    @property
    def peer(self) -> str:
        """The router's address as the connection reports it (e.g. ``tcp:127.0.0.1:8080``)."""
        return self.connection.peer

    @property
    def subprotocol(self) -> str | None:
        """The negotiated WebSocket subprotocol, ``wamp.2.json`` or ``wamp.2.msgpack``."""
        return self.connection.subprotocol

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return bool(self.connection.connected)

    @property
    def stats(self) -> SessionStats:
        """A snapshot of the traffic and request counters of this session."""
        c = self.connection.stats
        return SessionStats(
            bytes_in=c.bytes_in,
            bytes_out=c.bytes_out,
            messages_in=c.messages_in,
            messages_out=c.messages_out,
            calls_made=self._calls_made,
            invocations_served=self._invocations.served,
            events_received=self._events_received,
            publications_sent=self._publications_sent,
        )

    @property
    def pending_requests(self) -> int:
        """Number of requests waiting for an answer (0 once the session ended)."""
        return len(self._requests)

    def router_supports(self, role: str, feature: str) -> bool:
        """True when the router announced ``feature`` for ``role`` ("dealer" or "broker")."""
        return feature in self.router_features.get(role, ())

    @property
    def cancel_mode(self) -> str:
        """CANCEL mode sent when a call's Deferred is cancelled: skip, kill (default), killnowait."""
        return self._cancel_mode

    @cancel_mode.setter
    def cancel_mode(self, mode: str) -> None:
        if mode not in CANCEL_MODES:
            raise ValueError(f"cancel_mode must be one of {', '.join(CANCEL_MODES)}, got {mode!r}")
        self._cancel_mode = mode

    @property
    def closed(self) -> defer.Deferred[tuple[int, str]]:
        """A new Deferred for the end of the connection.

        Fires with ``(code, reason)`` when the connection ended with close code 1000 and
        fails with :class:`ConnectionClosed` (``.code``, ``.reason``) otherwise. Each read
        of the attribute gives a new Deferred (so an unobserved failure is never logged).
        """

        def check(result: tuple[int, str]) -> tuple[int, str]:
            code, reason = result
            if code != 1000:
                raise ConnectionClosed(code, reason)
            return result

        return self._when_ended().addCallback(check)

    def on(self, event: str, fn: Callable[..., Any]) -> None:
        """Call ``fn`` on ``"join"`` (session), ``"leave"`` (session, reason URI) or
        ``"close"`` (session, code, reason). Errors raised by ``fn`` are logged."""
        if event not in self._listeners:
            raise ValueError(f"unknown session event {event!r}; known: {', '.join(self._listeners)}")
        self._listeners[event].append(fn)

    # -- joining and leaving -------------------------------------------------------------

    def join(self) -> defer.Deferred[Session]:
        """Send HELLO; fires with this session when WELCOME arrives.

        Fails with :class:`SessionAborted` on ABORT (or when a CHALLENGE cannot be
        answered), with :class:`ConnectionClosed` when the connection ends first.
        """
        if self.state is not SessionState.NEW:
            raise RuntimeError(f"join() on a session in state {self.state.value}")
        details: dict[str, Any] = {"roles": features.client_roles(), "agent": features.AGENT}
        if self.authid:
            details["authid"] = self.authid
        if self._authmethods:
            details["authmethods"] = list(self._authmethods)
        self.state = SessionState.JOINING
        self._join_d = defer.Deferred()
        self._send([HELLO, self.realm, details])
        return self._join_d

    def leave(self, reason: str = "wamp.close.normal") -> defer.Deferred[str]:
        """Send GOODBYE and close the connection once the router answered.

        Fires with the router's GOODBYE reason URI once the connection has closed. Pending
        requests fail with :class:`ConnectionLost` at once. Fails with
        :class:`ConnectionLost` when the connection ends without an answer (after
        ``goodbye_timeout`` seconds the session closes the connection itself).
        """
        if self.state is SessionState.LEAVING and self._leave_d is not None:
            return self._when(self._leave_d)
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot leave: session is {self.state.value}"))
        self._leave_d = defer.Deferred()
        self._send([GOODBYE, {}, reason])
        self.state = SessionState.LEAVING
        self._end_session(ConnectionLost("the session left"), reason)
        self._goodbye_timer = self.clock.callLater(self.goodbye_timeout, self._on_goodbye_timeout)
        return self._when(self._leave_d)

    def close(self, code: int = 1000, reason: str = "") -> defer.Deferred[tuple[int, str]]:
        """Close the connection (no GOODBYE); fires with ``(code, reason)`` once closed.

        Unlike :attr:`closed` it never fails: the code is whatever the close ended with.
        """
        if self.state is SessionState.CLOSED:
            return defer.succeed((self.connection.close_code, self.connection.close_reason))
        d = self._when_ended()
        self.connection.close(code, reason)
        return d

    # -- requests --------------------------------------------------------------------

    def call(
        self,
        procedure: str,
        /,
        *args: Any,
        timeout: float | None = None,
        on_progress: Callable[..., Any] | None = None,
        disclose_me: bool = False,
        **kwargs: Any,
    ) -> defer.Deferred[Any]:
        """Call ``procedure`` with ``args`` and ``kwargs``.

        Fires with the single positional result, None for no result, or a
        :class:`CallResult` when there are several values or keyword values. Fails with
        :class:`ApplicationError` (the callee's or router's ERROR), :class:`CallTimeout`
        after ``timeout`` seconds (enforced locally even if the router ignores the
        option; ``None`` or 0: no timeout), :class:`ConnectionLost` when the session
        ends first, :class:`NotConnected` when not joined, ``EncodeError`` when the
        arguments cannot be serialized.

        ``on_progress(*args, **kwargs)`` receives progressive results (the callee's
        ``progress(...)`` calls) when the router supports them. ``disclose_me`` asks the
        router to tell the callee who calls. ``.cancel()`` on the returned Deferred
        fails it at once with ``CancelledError`` and sends CANCEL (mode
        :attr:`cancel_mode`) when the router supports call canceling.
        """
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot call {procedure}: session is {self.state.value}"))
        request_id = self._ids.next()
        options: dict[str, Any] = {}
        if timeout:
            options["timeout"] = int(math.ceil(timeout * 1000))
        if on_progress is not None:
            options["receive_progress"] = True
        if disclose_me:
            options["disclose_me"] = True
        d: defer.Deferred[Any] = defer.Deferred(lambda _: self._cancel_call(request_id))
        request = _Request(CALL, d, procedure, timeout)
        request.on_progress = on_progress
        failed = self._send_request(request_id, request, [CALL, request_id, options, procedure, *payload(args, kwargs)])
        if failed is not None:
            return failed
        self._calls_made += 1
        if timeout:
            request.timer = self.clock.callLater(timeout, self._call_timed_out, request_id)
        return d

    def register(
        self, procedure: str, fn: Callable[..., Any], *, match: str = "exact", invoke: str = "single"
    ) -> defer.Deferred[Registration]:
        """Register ``fn`` as ``procedure``; fires with a :class:`Registration`.

        ``fn(*args, **kwargs)`` may return a value, a :class:`CallResult`, a Deferred, or
        be an ``async def``. When the caller asked for progressive results it also gets a
        ``progress`` keyword argument: ``progress(*args, **kwargs)`` sends one progressive
        result. Raising :class:`ApplicationError` answers with that error; any other
        exception answers ``wamp.error.runtime_error`` with the exception's text (and the
        traceback when the session has ``debug`` on). Raises ValueError for an unknown
        ``match`` or ``invoke`` policy.
        """
        if match not in MATCH_POLICIES:
            raise ValueError(f"match must be one of {', '.join(MATCH_POLICIES)}, got {match!r}")
        if invoke not in INVOKE_POLICIES:
            raise ValueError(f"invoke must be one of {', '.join(INVOKE_POLICIES)}, got {invoke!r}")
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot register {procedure}: session is {self.state.value}"))
        options: dict[str, Any] = {}
        if match != "exact":
            options["match"] = match
        if invoke != "single":
            options["invoke"] = invoke
        request_id = self._ids.next()
        d: defer.Deferred[Registration] = defer.Deferred()
        request = _Request(REGISTER, d, procedure, (fn, match, invoke))
        return self._send_request(request_id, request, [REGISTER, request_id, options, procedure]) or d

    def subscribe(self, topic: str, handler: Callable[..., Any], *, match: str = "exact") -> defer.Deferred[Subscription]:
        """Subscribe ``handler(*args, **kwargs)`` to ``topic``; fires with a :class:`Subscription`.

        The handler may return a Deferred or be an ``async def``; its errors are logged.
        Raises ValueError for an unknown ``match`` policy.
        """
        if match not in MATCH_POLICIES:
            raise ValueError(f"match must be one of {', '.join(MATCH_POLICIES)}, got {match!r}")
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot subscribe to {topic}: session is {self.state.value}"))
        options = {"match": match} if match != "exact" else {}
        request_id = self._ids.next()
        d: defer.Deferred[Subscription] = defer.Deferred()
        request = _Request(SUBSCRIBE, d, topic, (handler, match))
        return self._send_request(request_id, request, [SUBSCRIBE, request_id, options, topic]) or d

    def publish(
        self,
        topic: str,
        /,
        *args: Any,
        acknowledge: bool = False,
        exclude_me: bool = True,
        retain: bool = False,
        exclude: list[int] | None = None,
        eligible: list[int] | None = None,
        **kwargs: Any,
    ) -> defer.Deferred[int | None]:
        """Publish an event with ``args`` and ``kwargs`` to ``topic``.

        With ``acknowledge=True`` the Deferred fires with the publication id once the
        router confirmed (or fails with its ERROR). Without it the router sends no
        answer: the Deferred has already fired with None when returned (it fails at once
        with :class:`NotConnected` or ``EncodeError`` when the event could not be sent).
        ``exclude_me=False`` asks to receive one's own event, ``exclude``/``eligible``
        list session ids, ``retain`` asks the broker to keep the event for late subscribers.
        """
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot publish to {topic}: session is {self.state.value}"))
        options: dict[str, Any] = {}
        if acknowledge:
            options["acknowledge"] = True
        if not exclude_me:
            options["exclude_me"] = False
        if retain:
            options["retain"] = True
        if exclude is not None:
            options["exclude"] = list(exclude)
        if eligible is not None:
            options["eligible"] = list(eligible)
        request_id = self._ids.next()
        message = [PUBLISH, request_id, options, topic, *payload(args, kwargs)]
        if not acknowledge:
            try:
                self._send(message)
            except Exception as error:
                return defer.fail(error)
            self._publications_sent += 1
            return defer.succeed(None)
        d: defer.Deferred[int | None] = defer.Deferred()
        failed = self._send_request(request_id, _Request(PUBLISH, d, topic), message)
        if failed is None:
            self._publications_sent += 1
        return failed or d

    # -- from the connection ------------------------------------------------------------

    def on_message(self, message: list) -> None:
        """Handle one received message (already checked by the wire layer)."""
        state = self.state
        code = message[0]
        if state is SessionState.JOINED:
            handler = self._dispatch.get(code)
            if handler is None:
                self._protocol_violation(f"{message_name(code)} is not expected in an established session")
            else:
                handler(message)
        elif state is SessionState.JOINING:
            if code == WELCOME:
                self._on_welcome(message)
            elif code == CHALLENGE:
                self._on_challenge(message)
            elif code == ABORT:
                self._on_abort(message)
            else:
                self._protocol_violation(f"{message_name(code)} before WELCOME")
        elif state is SessionState.LEAVING:
            if code == GOODBYE:
                self._goodbye_reason = message[2]
                self.state = SessionState.LEFT
                self._cancel_goodbye_timer()
                self.connection.close(1000, "")
            elif code == ABORT:
                self.state = SessionState.LEFT
                self.connection.close(1000, "")
            # anything else after our GOODBYE is ignored
        else:
            log.debug("{kind} ignored in session state {state}", kind=message_name(code), state=state.value)

    def on_protocol_error(self, error: ProtocolError) -> None:
        """The router sent a message that broke the protocol: ABORT and close (1002)."""
        self._protocol_violation(str(error))

    def on_close(self, code: int, reason: str) -> None:
        """The connection is gone: fail everything still waiting."""
        previous = self.state
        self.state = SessionState.CLOSED
        self._cancel_goodbye_timer()
        lost = ConnectionLost(f"connection closed ({code}{': ' + reason if reason else ''})", code, reason)
        join_d, self._join_d = self._join_d, None
        if join_d is not None and not join_d.called:
            join_d.errback(ConnectionClosed(code, reason, f"connection closed before the session joined ({code} {reason})".rstrip()))
        if previous is SessionState.JOINED:
            self._end_session(lost, f"connection closed ({code})")
        leave_d, self._leave_d = self._leave_d, None
        if leave_d is not None and not leave_d.called:
            if self._goodbye_reason is not None:
                leave_d.callback(self._goodbye_reason)
            else:
                leave_d.errback(ConnectionLost(f"connection closed before GOODBYE was answered ({code})", code, reason))
        waiters, self._end_waiters = self._end_waiters, []
        for waiter in waiters:
            waiter.callback((code, reason))
        self._emit("close", self, code, reason)

    # -- session lifecycle ----------------------------------------------------------------

    def _on_welcome(self, message: list) -> None:
        details = message[2]
        self.session_id = message[1]
        self.welcome_details = details
        for name in ("authid", "authrole", "authmethod"):
            value = details.get(name)
            if isinstance(value, str):
                setattr(self, name, value)
        roles = details.get("roles")
        self.router_roles = roles if isinstance(roles, dict) else {}
        self.router_features = features.announced(self.router_roles)
        self.state = SessionState.JOINED
        log.debug("session {id} joined realm {realm}", id=self.session_id, realm=self.realm)
        self._emit("join", self)
        join_d, self._join_d = self._join_d, None
        if join_d is not None:
            join_d.callback(self)

    def _on_challenge(self, message: list) -> None:
        method, extra = message[1], message[2]
        try:
            signature = answer_challenge(method, extra, self._credentials)
        except AuthenticationError as error:
            self._abort(SessionAborted("wamp.error.cannot_authenticate", str(error)), 1000)
            return
        self._send([AUTHENTICATE, signature, {}])

    def _on_abort(self, message: list) -> None:
        text = message[1].get("message")
        self._abort(SessionAborted(message[2], text if isinstance(text, str) else ""), 1000, send=False)

    def _on_goodbye(self, message: list) -> None:
        """The router closes the session: answer GOODBYE, then close the connection."""
        reason = message[2]
        self._send([GOODBYE, {}, ErrorURI.CLOSE_GOODBYE_AND_OUT])
        self.state = SessionState.LEFT
        self._end_session(ConnectionLost(f"the router closed the session ({reason})"), reason)
        self.connection.close(1000, "")

    def _on_goodbye_timeout(self) -> None:
        self._goodbye_timer = None
        if self.state is SessionState.LEAVING:
            log.info("session {id}: GOODBYE not answered within {t} s", id=self.session_id, t=self.goodbye_timeout)
            self.state = SessionState.LEFT
            self.connection.close(1000, "GOODBYE not answered")

    def _cancel_goodbye_timer(self) -> None:
        timer, self._goodbye_timer = self._goodbye_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _protocol_violation(self, text: str) -> None:
        log.info("session {id}: protocol violation by the router: {text}", id=self.session_id, text=text)
        self._abort(SessionAborted(ErrorURI.PROTOCOL_VIOLATION, text), 1002)

    def _abort(self, error: SessionAborted, close_code: int, send: bool = True) -> None:
        """End the session with ABORT (sent unless ``send`` is False) and close the connection."""
        previous = self.state
        if previous in (SessionState.LEFT, SessionState.CLOSED):
            return
        if send:
            self._send([ABORT, {"message": error.message}, error.reason])
        self.state = SessionState.LEFT
        join_d, self._join_d = self._join_d, None
        if join_d is not None and not join_d.called:
            join_d.errback(error)
        if previous in (SessionState.JOINED, SessionState.LEAVING):
            self._end_session(ConnectionLost(f"session aborted: {error}"), error.reason)
        self.connection.close(close_code, error.message or error.reason)

    def _end_session(self, error: Exception, reason: str) -> None:
        """Fail every pending request, drop invocations, deactivate handles; emit leave."""
        requests, self._requests = self._requests, {}
        for request in requests.values():
            if request.timer is not None and request.timer.active():
                request.timer.cancel()
        dropped = self._invocations.drop_all()
        if dropped:
            log.debug("session {id}: {n} invocations in progress dropped", id=self.session_id, n=dropped)
        for registration in self._registrations.values():
            registration.active = False
        self._registrations.clear()
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.active = False
        self._subscriptions.clear()
        for request in requests.values():
            if not request.deferred.called:
                request.deferred.errback(ConnectionLost(str(error), getattr(error, "code", None), getattr(error, "reason", None)))
        self._emit("leave", self, reason)

    # -- answers ------------------------------------------------------------------------

    def _take(self, message: list, request_id: int, kind: int) -> _Request | None:
        """Remove and return the pending request ``request_id`` if it is of ``kind``."""
        request = self._requests.get(request_id)
        if request is None or request.kind != kind:
            log.debug(
                "session {id}: {what} for unknown request {req} ignored",
                id=self.session_id,
                what=message_name(message[0]),
                req=request_id,
            )
            return None
        del self._requests[request_id]
        if request.timer is not None and request.timer.active():
            request.timer.cancel()
        return request

    def _on_result(self, message: list) -> None:
        request_id, details = message[1], message[2]
        args = message[3] if len(message) > 3 else []
        kwargs = message[4] if len(message) > 4 else {}
        if details.get("progress") is True:
            request = self._requests.get(request_id)
            if request is None or request.kind != CALL or request.on_progress is None:
                log.debug("session {id}: progressive RESULT for {req} ignored", id=self.session_id, req=request_id)
                return
            try:
                as_deferred(request.on_progress(*args, **kwargs)).addErrback(self._log_handler_error, "on_progress")
            except Exception as error:
                log.info("on_progress for {p} raised {e!r}", p=request.target, e=error)
            return
        request = self._take(message, request_id, CALL)
        if request is None:
            return
        if kwargs or len(args) > 1:
            request.deferred.callback(CallResult(list(args), dict(kwargs)))
        else:
            request.deferred.callback(args[0] if args else None)

    def _on_error(self, message: list) -> None:
        request_type, request_id, error_uri = message[1], message[2], message[4]
        request = self._take(message, request_id, request_type)
        if request is None:
            return
        args = message[5] if len(message) > 5 else []
        kwargs = message[6] if len(message) > 6 else {}
        if request_type == CALL and error_uri == TIMEOUT_URI:
            request.deferred.errback(CallTimeout(*args, **kwargs))
        else:
            request.deferred.errback(ApplicationError(error_uri, *args, **kwargs))

    def _on_registered(self, message: list) -> None:
        request = self._take(message, message[1], REGISTER)
        if request is not None:
            fn, match, invoke = request.data
            registration = Registration(self, message[2], request.target, fn, match, invoke)
            self._registrations[registration.id] = registration
            request.deferred.callback(registration)

    def _on_unregistered(self, message: list) -> None:
        request_id = message[1]
        if request_id == 0:  # registration revoked by the router
            details = message[2] if len(message) > 2 else {}
            registration = self._registrations.pop(details.get("registration"), None)  # type: ignore[arg-type]
            if registration is not None:
                registration.active = False
                log.info("registration of {p} revoked by the router", p=registration.procedure)
            return
        request = self._take(message, request_id, UNREGISTER)
        if request is not None:
            registration = request.data
            self._registrations.pop(registration.id, None)
            registration.active = False
            request.deferred.callback(None)

    def _on_subscribed(self, message: list) -> None:
        request = self._take(message, message[1], SUBSCRIBE)
        if request is not None:
            handler, match = request.data
            subscription = Subscription(self, message[2], request.target, handler, match)
            self._subscriptions.setdefault(subscription.id, []).append(subscription)
            request.deferred.callback(subscription)

    def _on_unsubscribed(self, message: list) -> None:
        request_id = message[1]
        if request_id == 0:  # subscription revoked by the router
            details = message[2] if len(message) > 2 else {}
            for subscription in self._subscriptions.pop(details.get("subscription"), []):  # type: ignore[arg-type]
                subscription.active = False
            return
        request = self._take(message, request_id, UNSUBSCRIBE)
        if request is not None:
            subscription = request.data
            subscription.active = False
            self._forget_subscription(subscription)
            request.deferred.callback(None)

    def _on_published(self, message: list) -> None:
        request = self._take(message, message[1], PUBLISH)
        if request is not None:
            request.deferred.callback(message[2])

    def _on_event(self, message: list) -> None:
        subscriptions = self._subscriptions.get(message[1])
        if not subscriptions:
            log.debug("session {id}: EVENT for unknown subscription {sub} ignored", id=self.session_id, sub=message[1])
            return
        self._events_received += 1
        args = message[4] if len(message) > 4 else []
        kwargs = message[5] if len(message) > 5 else {}
        for subscription in list(subscriptions):
            try:
                result = subscription.handler(*args, **kwargs)
            except Exception as error:
                log.info("event handler for {topic} raised {e!r}", topic=subscription.topic, e=error)
                continue
            if result is not None:
                as_deferred(result).addErrback(self._log_handler_error, f"event handler for {subscription.topic}")

    def _on_invocation(self, message: list) -> None:
        self._invocations.on_invocation(message, self._registrations.get(message[2]))

    # -- handles ------------------------------------------------------------------------

    def _unregister(self, registration: Registration) -> defer.Deferred[None]:
        if not registration.active or self.state is not SessionState.JOINED:
            registration.active = False
            return defer.succeed(None)
        request_id = self._ids.next()
        d: defer.Deferred[None] = defer.Deferred()
        request = _Request(UNREGISTER, d, registration.procedure, registration)
        return self._send_request(request_id, request, [UNREGISTER, request_id, registration.id]) or d

    def _unsubscribe(self, subscription: Subscription) -> defer.Deferred[None]:
        if not subscription.active or self.state is not SessionState.JOINED:
            subscription.active = False
            return defer.succeed(None)
        shared = self._subscriptions.get(subscription.id, [])
        if len(shared) > 1:
            subscription.active = False
            self._forget_subscription(subscription)
            return defer.succeed(None)
        request_id = self._ids.next()
        d: defer.Deferred[None] = defer.Deferred()
        request = _Request(UNSUBSCRIBE, d, subscription.topic, subscription)
        return self._send_request(request_id, request, [UNSUBSCRIBE, request_id, subscription.id]) or d

    def _forget_subscription(self, subscription: Subscription) -> None:
        shared = self._subscriptions.get(subscription.id)
        if shared is not None:
            if subscription in shared:
                shared.remove(subscription)
            if not shared:
                del self._subscriptions[subscription.id]

    # -- cancel and timeout -------------------------------------------------------------

    def _cancel_call(self, request_id: int) -> None:
        """Canceller of a call's Deferred: Twisted then fails it with CancelledError."""
        request = self._requests.pop(request_id, None)
        if request is None:
            return
        if request.timer is not None and request.timer.active():
            request.timer.cancel()
        if self.state is SessionState.JOINED and self.router_supports("dealer", "call_canceling"):
            self._send([CANCEL, request_id, {"mode": self._cancel_mode}])

    def _call_timed_out(self, request_id: int) -> None:
        request = self._requests.pop(request_id, None)
        if request is None:
            return
        request.timer = None
        if self.state is SessionState.JOINED and self.router_supports("dealer", "call_canceling"):
            self._send([CANCEL, request_id, {"mode": "killnowait"}])
        request.deferred.errback(CallTimeout(f"call to {request.target} timed out after {request.data} s"))

    # -- helpers ------------------------------------------------------------------------

    def _send(self, message: list) -> None:
        self.connection.send(message)

    def _send_request(self, request_id: int, request: _Request, message: list) -> defer.Deferred[Any] | None:
        """Send a request and enter it in the table; a failed Deferred if it could not be sent."""
        try:
            self._send(message)
        except Exception as error:  # EncodeError: the arguments cannot be serialized
            return defer.fail(error)
        self._requests[request_id] = request
        return None

    def _when_ended(self) -> defer.Deferred[tuple[int, str]]:
        if self.state is SessionState.CLOSED:
            return defer.succeed((self.connection.close_code, self.connection.close_reason))
        d: defer.Deferred[tuple[int, str]] = defer.Deferred()
        self._end_waiters.append(d)
        return d

    @staticmethod
    def _when(d: defer.Deferred[Any]) -> defer.Deferred[Any]:
        """A new Deferred with ``d``'s outcome (``d`` itself keeps no unhandled failure)."""
        copy: defer.Deferred[Any] = defer.Deferred()

        def relay(result: Any) -> None:
            if isinstance(result, Failure):
                copy.errback(result)
            else:
                copy.callback(result)

        d.addBoth(relay)
        return copy

    def _emit(self, event: str, *args: Any) -> None:
        for fn in list(self._listeners[event]):
            try:
                fn(*args)
            except Exception as error:
                log.info("session {event} listener raised {e!r}", event=event, e=error)

    @staticmethod
    def _log_handler_error(failure: Any, what: str) -> None:
        log.info("{what} failed: {e!r}", what=what, e=failure.value)


__all__ = ["CANCEL_MODES", "Connection", "Session"]
