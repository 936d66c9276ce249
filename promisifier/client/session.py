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

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client import features
from promisifier.client.auth import AuthenticationError, ClientAuth, default_authmethods
from promisifier.client.callee import Invocations
from promisifier.client.correlation import Correlation
from promisifier.client.errors import (
    ConnectionClosed,
    ConnectionLost,
    NotConnected,
    SessionAborted,
)
from promisifier.client.listeners import Listeners
from promisifier.client.session_requests import CANCEL_MODES, SessionRequests
from promisifier.client.types import SessionState, SessionStats
from promisifier.client.user_errors import UserErrorHook, log_user_error
from promisifier.transport import tls_facts
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import ErrorURI, IdSequence, ProtocolError
from promisifier.wire.messages import (
    ABORT,
    AUTHENTICATE,
    CHALLENGE,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INTERRUPT,
    INVOCATION,
    PUBLISHED,
    REGISTERED,
    RESULT,
    SUBSCRIBED,
    UNREGISTERED,
    UNSUBSCRIBED,
    WELCOME,
    Message,
    message_name,
)

log = Logger(namespace="promisifier.client")


class Connection(Protocol):
    """What a session needs of its connection (a :class:`WampClientProtocol` or a fake)."""

    stats: ConnectionStats
    peer: str | None
    connected: bool
    close_code: int
    close_reason: str

    @property
    def subprotocol(self) -> str | None: ...

    def send(self, message: Message) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...

    def drop(self) -> None: ...


class Session(SessionRequests):
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
        clock: Any = None,
        goodbye_timeout: float = 5.0,
        debug: bool = False,
        on_user_error: UserErrorHook | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as default_reactor

            clock = default_reactor
        self.connection = connection
        self.realm = realm
        #: the IReactorTime every timer of the session runs on
        self.clock: Any = clock
        self.goodbye_timeout = goodbye_timeout
        self.debug = debug
        #: called with (failure, what) for an exception raised by the application's code
        #: (handlers, procedures, callbacks, listeners); default: logged with its traceback
        self.on_user_error: UserErrorHook = on_user_error if on_user_error is not None else log_user_error
        self.state = SessionState.NEW
        self.session_id: int | None = None
        self.authid: str | None = authid
        self.authrole: str | None = None
        self.authmethod: str | None = None
        self.welcome_details: dict[str, Any] = {}
        self.router_roles: dict[str, Any] = {}
        self.router_features: dict[str, frozenset[str]] = {}
        self._authmethods = list(authmethods) if authmethods else default_authmethods(credentials)
        self._auth = ClientAuth(
            authid,
            self._authmethods,
            credentials,
            channel_id=lambda binding: tls_facts.channel_id(self.connection, binding, server=False),
        )
        self._cancel_mode = "kill"
        self._ids = IdSequence()
        self._table = Correlation(
            self._send, self._user_error, self._unregister, self._unsubscribe, lambda: self.session_id
        )
        self._invocations = Invocations(self._send, debug=debug, on_user_error=self._user_error)
        self._calls_made = 0
        self._publications_sent = 0
        self._join_d: defer.Deferred[Session] | None = None
        self._leave_waiters: list[defer.Deferred[str]] = []
        self._goodbye_reason: str | None = None
        self._goodbye_timer: Any = None
        self._end_waiters: list[defer.Deferred[tuple[int, str]]] = []
        self._listeners = Listeners(
            ("join", "leave", "close"), self._user_error, lambda event: f"session {event} listener", "session "
        )
        self._dispatch: dict[int, Callable[[Message], None]] = {
            RESULT: self._table.on_result,
            ERROR: self._table.on_error,
            REGISTERED: self._table.on_registered,
            UNREGISTERED: self._table.on_unregistered,
            SUBSCRIBED: self._table.on_subscribed,
            UNSUBSCRIBED: self._table.on_unsubscribed,
            PUBLISHED: self._table.on_published,
            EVENT: self._table.on_event,
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
    def peer(self) -> str | None:
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
            events_received=self._table.events_received,
            publications_sent=self._publications_sent,
        )

    @property
    def pending_requests(self) -> int:
        """Number of requests waiting for an answer (0 once the session ended)."""
        return len(self._table)

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
        ``"close"`` (session, code, reason). Errors raised by ``fn`` go to ``on_user_error``."""
        self._listeners.add(event, fn)

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
            try:
                authextra = self._auth.hello_authextra()
            except AuthenticationError as error:
                return defer.fail(SessionAborted("wamp.error.cannot_authenticate", str(error)))
            if authextra:
                details["authextra"] = authextra
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
        leaving = bool(self._leave_waiters)
        if not leaving and self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot leave: session is {self.state.value}"))
        d: defer.Deferred[str] = defer.Deferred()
        self._leave_waiters.append(d)
        if not leaving:
            self._send([GOODBYE, {}, reason])
            self.state = SessionState.LEAVING
            self._end_session(ConnectionLost("the session left"), reason)
            self._goodbye_timer = self.clock.callLater(self.goodbye_timeout, self._on_goodbye_timeout)
        return d

    def close(self, code: int = 1000, reason: str = "") -> defer.Deferred[tuple[int, str]]:
        """Close the connection (no GOODBYE); fires with ``(code, reason)`` once closed.

        Unlike :attr:`closed` it never fails: the code is whatever the close ended with.
        """
        if self.state is SessionState.CLOSED:
            return defer.succeed((self.connection.close_code, self.connection.close_reason))
        d = self._when_ended()
        self.connection.close(code, reason)
        return d

    # -- from the connection ------------------------------------------------------------

    def on_message(self, message: Message) -> None:
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
            join_d.errback(
                ConnectionClosed(
                    code, reason, f"connection closed before the session joined ({code} {reason})".rstrip()
                )
            )
        if previous is SessionState.JOINED:
            self._end_session(lost, f"connection closed ({code})")
        leave_waiters, self._leave_waiters = self._leave_waiters, []
        for leave_d in leave_waiters:
            if self._goodbye_reason is not None:
                leave_d.callback(self._goodbye_reason)
            else:
                leave_d.errback(ConnectionLost(f"connection closed before GOODBYE was answered ({code})", code, reason))
        waiters, self._end_waiters = self._end_waiters, []
        for waiter in waiters:
            waiter.callback((code, reason))
        self._emit("close", self, code, reason)

    # -- session lifecycle ----------------------------------------------------------------

    def _on_welcome(self, message: Message) -> None:
        details = message[2]
        refused = self._auth.check_welcome(details)
        if refused is not None:
            self._abort(SessionAborted("wamp.error.authentication_failed", refused), 1000)
            return
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

    def _on_challenge(self, message: Message) -> None:
        method, extra = message[1], message[2]
        try:
            signature, answer_extra = self._auth.answer(method, extra)
        except AuthenticationError as error:
            self._abort(SessionAborted("wamp.error.cannot_authenticate", str(error)), 1000)
            return
        self._send([AUTHENTICATE, signature, answer_extra])

    def _on_abort(self, message: Message) -> None:
        text = message[1].get("message")
        self._abort(SessionAborted(message[2], text if isinstance(text, str) else ""), 1000, send=False)

    def _on_goodbye(self, message: Message) -> None:
        """The router closes the session: answer GOODBYE, then close the connection.

        The client closes the WebSocket after its answer (the router waits for that and
        closes only if the client does not): one side starting the closing handshake
        keeps the close clean.
        """
        reason = message[2]
        self._send([GOODBYE, {}, ErrorURI.CLOSE_GOODBYE_AND_OUT])
        self.state = SessionState.LEFT
        self._end_session(ConnectionLost(f"the router closed the session ({reason})"), reason)
        self.connection.close(1000, "session ended")

    def _on_goodbye_timeout(self) -> None:
        self._goodbye_timer = None
        if self.state is SessionState.LEAVING:
            log.info("session {id}: GOODBYE not answered within {t} s", id=self.session_id, t=self.goodbye_timeout)
            self.state = SessionState.LEFT
            self.connection.close(1000, "GOODBYE not answered")
        elif self.state is SessionState.LEFT:
            self.connection.close(1000, "session ended")

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
        if close_code != 1000:
            self.connection.close(close_code, error.message or error.reason)
        else:
            # After ABORT the router closes the connection (see _on_goodbye); fallback timer.
            self._cancel_goodbye_timer()
            self._goodbye_timer = self.clock.callLater(self.goodbye_timeout, self._on_goodbye_timeout)

    def _end_session(self, error: ConnectionLost, reason: str) -> None:
        """Emit leave, then fail every pending request, drop invocations and deactivate
        handles. Leave comes first, so that code run by a failing request (an errback)
        already sees the session, and a client holding it, as ended."""
        self._emit("leave", self, reason)
        self._table.end(error)
        dropped = self._invocations.drop_all()
        if dropped:
            log.debug("session {id}: {n} invocations in progress dropped", id=self.session_id, n=dropped)

    def _on_invocation(self, message: Message) -> None:
        self._invocations.on_invocation(message, self._table.registrations.get(message[2]))

    # -- helpers ------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        self.connection.send(message)

    def _when_ended(self) -> defer.Deferred[tuple[int, str]]:
        if self.state is SessionState.CLOSED:
            return defer.succeed((self.connection.close_code, self.connection.close_reason))
        d: defer.Deferred[tuple[int, str]] = defer.Deferred()
        self._end_waiters.append(d)
        return d

    def _emit(self, event: str, *args: Any) -> None:
        self._listeners.emit(event, *args)

    def _user_error(self, failure: Failure, what: str) -> None:
        self.on_user_error(failure, what)


__all__ = ["CANCEL_MODES", "Connection", "Session"]
