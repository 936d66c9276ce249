"""A client that stays joined: reconnects with backoff and restores what it offered.

:class:`Client` keeps one :class:`~promisifier.client.session.Session` joined to its realm
across connection losses and router restarts. Procedures registered and topics subscribed
through the client are registered and subscribed again on every new session.

Its state machine (:class:`ClientState`)::

    DISCONNECTED --connect()--> CONNECTING --joined--> JOINED
    CONNECTING --attempt failed--> BACKING_OFF --timer--> CONNECTING
    JOINED --connection lost--> BACKING_OFF
    BACKING_OFF / CONNECTING --max_reconnects exceeded--> GIVEN_UP --connect()--> CONNECTING
    any --close() / leave()--> DISCONNECTED        (reconnect=False: failures also end here)

``max_reconnects`` counts consecutive failed reconnect attempts since the last join (the
first connection attempt is not a reconnect): with ``max_reconnects=2`` and a URL that
refuses, the client tries 3 times, then gives up and fires ``"reconnect_failed"``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client.connection import open_session
from promisifier.client.errors import CallTimeout, ConnectionLost, NotConnected
from promisifier.client.handles import ClientRegistration, ClientSubscription
from promisifier.client.listeners import Listeners
from promisifier.client.session import Session
from promisifier.client.tls import TlsOptions
from promisifier.client.types import SessionState
from promisifier.client.user_errors import UserErrorHook, log_user_error

log = Logger(namespace="promisifier.client")

EVENTS = ("connect", "join", "leave", "disconnect", "attempt_failed", "reconnect_failed")


class ClientState(enum.Enum):
    """Where a :class:`Client` is (see the module's state chart)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    JOINED = "joined"
    BACKING_OFF = "backing_off"
    GIVEN_UP = "given_up"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, a floor and a cap.

    The delay before reconnect attempt ``n`` (0 for the first) is drawn uniformly from
    ``[floor, max(floor, min(cap, initial * factor ** n))]``.
    """

    initial: float = 1.0
    factor: float = 2.0
    floor: float = 0.1
    cap: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.floor <= self.cap or self.initial <= 0 or self.factor < 1:
            raise ValueError(f"invalid backoff {self!r}: need 0 <= floor <= cap, initial > 0, factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """The largest delay for reconnect attempt ``attempt``."""
        return max(self.floor, min(self.cap, self.initial * self.factor ** min(attempt, 64)))

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """A delay for reconnect attempt ``attempt`` (``rng()`` in [0, 1) picks it)."""
        return self.floor + (self.ceiling(attempt) - self.floor) * rng()


class Client:
    """A reconnecting WAMP client.

    ``Client(url, realm)`` connects at once (``autoconnect``); :meth:`connect` fires with
    the session once joined. On a lost connection it reconnects after a backoff
    (``reconnect_interval`` is the initial delay; pass ``backoff`` to tune floor, cap and
    factor) up to ``max_reconnects`` consecutive failures (0: without limit), re-registers
    every procedure and re-subscribes every topic it was given, and fires its events.

    Events (:meth:`on`): ``"connect"`` (session; WebSocket open, before joining),
    ``"join"`` (session; joined and everything restored), ``"leave"`` (session, reason
    URI), ``"disconnect"`` (code, reason), ``"attempt_failed"`` (the error of a connection
    attempt that failed, before the client backs off or gives up), ``"reconnect_failed"``
    (no arguments). When a joined session ends, the state changes and ``leave`` and
    ``disconnect`` fire before the session's pending requests fail.

    The remaining keyword arguments are those of :func:`~promisifier.client.connect`;
    ``connect_timeout`` bounds each attempt, ``wait_timeout`` bounds
    ``call(..., wait_connected=True)`` when the call has no timeout of its own.
    """

    def __init__(
        self,
        url: str,
        realm: str,
        *,
        autoconnect: bool = True,
        reconnect: bool = True,
        reconnect_interval: float = 1.0,
        max_reconnects: int = 5,
        backoff: Backoff | None = None,
        serializers: Iterable[str] = ("msgpack", "json"),
        authid: str | None = None,
        authmethods: list[str] | tuple[str, ...] | None = None,
        credentials: dict[str, Any] | None = None,
        tls: TlsOptions | dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        wait_timeout: float = 10.0,
        reactor: Any = None,
        on_user_error: UserErrorHook | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        if max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0 (0: unlimited), got {max_reconnects}")
        self.url = url
        self.realm = realm
        self.reconnect = reconnect
        self.max_reconnects = max_reconnects
        self.backoff = backoff or Backoff(
            initial=reconnect_interval, floor=min(0.1, reconnect_interval), cap=max(30.0, reconnect_interval)
        )
        self.connect_timeout = connect_timeout
        self.wait_timeout = wait_timeout
        self.reactor = reactor
        self.random = random.Random()
        #: called with (failure, what) for an exception raised by the application's code
        #: (handlers, procedures, callbacks, listeners) in this client and its sessions;
        #: default: logged with its traceback at error level
        self.on_user_error: UserErrorHook = on_user_error if on_user_error is not None else log_user_error
        self._connect_options: dict[str, Any] = {
            "serializers": tuple(serializers),
            "authid": authid,
            "authmethods": authmethods,
            "credentials": credentials,
            "on_user_error": self._user_error,
            "tls": tls,
        }
        self._state = ClientState.DISCONNECTED
        #: reconnect attempts made since the last join (or the last connect())
        self.reconnect_attempts = 0
        self._session: Session | None = None
        self._attempt: defer.Deferred[Session] | None = None
        self._timer: Any = None
        self._waiters: list[defer.Deferred[Session]] = []
        self._listeners = Listeners(EVENTS, self._user_error, lambda event: f"client {event} listener")
        self._registrations: dict[str, ClientRegistration] = {}
        self._subscriptions: list[ClientSubscription] = []
        #: a joined session handed over by adopt(), used instead of the next attempt
        self._adopted: Session | None = None
        if autoconnect:
            self._start()

    # -- facts and events ---------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The current state (see :class:`ClientState`)."""
        return self._state

    @property
    def session(self) -> Session | None:
        """The joined session, or None while not joined (also while a session is ending)."""
        session = self._session
        if self._state is ClientState.JOINED and session is not None and session.is_joined:
            return session
        return None

    def on(self, event: str, fn: Callable[..., Any]) -> None:
        """Call ``fn`` on ``event`` (see the class docstring); errors in ``fn`` go to ``on_user_error``."""
        self._listeners.add(event, fn)

    def off(self, event: str, fn: Callable[..., Any]) -> None:
        """Stop calling ``fn`` on ``event``."""
        self._listeners.remove(event, fn)

    # -- connecting and closing -----------------------------------------------------------

    def connect(self) -> defer.Deferred[Session]:
        """Connect (unless already under way); fires with the session once joined.

        Fails with :class:`NotConnected` when the client gives up or is closed first.
        """
        session = self.session
        if session is not None:
            return defer.succeed(session)
        waiter = self._wait(None)
        if self._state in (ClientState.DISCONNECTED, ClientState.GIVEN_UP):
            self._start()
        return waiter

    def adopt(self, session: Session) -> defer.Deferred[Session]:
        """Connect with ``session``, already joined to this client's realm (for example
        after authenticating in some other way), instead of opening a connection; it is
        restored and watched like a session of its own. Later reconnects open
        connections as usual. Fires like :meth:`connect`."""
        self._adopted = session
        return self.connect()

    def set_credentials(
        self,
        authid: str | None = None,
        authmethods: list[str] | tuple[str, ...] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> None:
        """Authenticate with these from the next connection attempt on (the arguments
        of the constructor of the same names)."""
        self._connect_options.update(authid=authid, authmethods=authmethods, credentials=credentials)

    def close(self, code: int = 1000, reason: str = "") -> defer.Deferred[None]:
        """Stop for good: no reconnect; close the session's connection if there is one."""
        session = self._stop("client closed")
        if session is None:
            return defer.succeed(None)
        return session.close(code, reason).addCallback(lambda _: None)

    def leave(self, reason: str = "wamp.close.normal") -> defer.Deferred[None]:
        """Leave the session (GOODBYE) and stop for good (no reconnect)."""
        session = self._stop("client left")
        if session is None:
            return defer.succeed(None)

        def ended(_: Any) -> None:
            return None

        def not_joined(failure: Failure) -> None:
            failure.trap(ConnectionLost, NotConnected)

        return session.leave(reason).addCallbacks(ended, not_joined)

    # -- requests -----------------------------------------------------------------------

    def call(
        self,
        procedure: str,
        /,
        *args: Any,
        timeout: float | None = None,
        on_progress: Callable[..., Any] | None = None,
        disclose_me: bool = False,
        wait_connected: bool = False,
        **kwargs: Any,
    ) -> defer.Deferred[Any]:
        """:meth:`Session.call` on the current session.

        While not joined it fails at once with :class:`NotConnected`, unless
        ``wait_connected`` is true: then it waits for the next join (bounded by
        ``timeout``, or ``wait_timeout`` without one) and the call gets what is left of
        ``timeout``. Cancelling the Deferred cancels the wait or the call.
        """
        session = self.session
        if session is not None:
            return session.call(
                procedure, *args, timeout=timeout, on_progress=on_progress, disclose_me=disclose_me, **kwargs
            )
        if not wait_connected or self._state in (ClientState.DISCONNECTED, ClientState.GIVEN_UP):
            return defer.fail(NotConnected(f"cannot call {procedure}: client is {self._state.value}"))
        started = self.reactor.seconds()
        waiter = self._wait(timeout or self.wait_timeout)
        current = [waiter]
        outer: defer.Deferred[Any] = defer.Deferred(lambda _: current[0].cancel())

        def relay(result: Any) -> None:
            if outer.called:
                return
            if isinstance(result, Failure):
                outer.errback(result)
            else:
                outer.callback(result)

        def joined(session: Session) -> None:
            remaining = None
            if timeout:
                remaining = timeout - (self.reactor.seconds() - started)
                if remaining <= 0:
                    relay(Failure(CallTimeout(f"call to {procedure} timed out while waiting for a session")))
                    return
            current[0] = session.call(
                procedure, *args, timeout=remaining, on_progress=on_progress, disclose_me=disclose_me, **kwargs
            )
            current[0].addBoth(relay)

        waiter.addCallbacks(joined, relay)
        return outer

    def call_stream(
        self,
        procedure: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        /,
        *,
        timeout: float | None = None,
        on_progress: Callable[..., Any] | None = None,
        disclose_me: bool = False,
    ) -> defer.Deferred[Any]:
        """:meth:`Session.call_stream <promisifier.client.Session.call_stream>` on the
        current session; fails at once with :class:`NotConnected` while not joined."""
        session = self.session
        if session is None:
            return defer.fail(NotConnected(f"cannot call {procedure}: client is {self._state.value}"))
        return session.call_stream(procedure, chunks, timeout=timeout, on_progress=on_progress, disclose_me=disclose_me)

    def register(
        self,
        procedure: str,
        fn: Callable[..., Any],
        *,
        match: str = "exact",
        invoke: str = "single",
        details: bool = False,
        stream_input: bool = False,
    ) -> defer.Deferred[ClientRegistration]:
        """Register ``fn`` now (if joined) and on every later session (options as
        :meth:`Session.register <promisifier.client.Session.register>`).

        Fires with a :class:`ClientRegistration` once registered on the current session,
        at once when not joined, or when the connection is lost before the answer (it is
        registered again after the reconnect). Fails when the router refuses it (the
        procedure is then forgotten) or when this client already registered it.
        """
        if procedure in self._registrations:
            return defer.fail(ValueError(f"{procedure} is already registered by this client"))
        handle = ClientRegistration(self._forget_registration, procedure, fn, match, invoke, details, stream_input)
        self._registrations[procedure] = handle
        session = self.session
        if session is None:
            return defer.succeed(handle)

        def refused(failure: Failure) -> Any:
            if failure.check(ConnectionLost, NotConnected):
                return handle
            self._forget_registration(handle)
            return failure

        return handle.register_on(session).addCallbacks(lambda _: handle, refused)

    def subscribe(
        self,
        topic: str,
        handler: Callable[..., Any],
        *,
        match: str = "exact",
        details: bool = False,
        get_retained: bool = False,
    ) -> defer.Deferred[ClientSubscription]:
        """Subscribe ``handler`` now (if joined) and on every later session (options as
        :meth:`Session.subscribe <promisifier.client.Session.subscribe>`).

        Fires like :meth:`register`, with a :class:`ClientSubscription`.
        """
        handle = ClientSubscription(self._forget_subscription, topic, handler, match, details, get_retained)
        self._subscriptions.append(handle)
        session = self.session
        if session is None:
            return defer.succeed(handle)

        def refused(failure: Failure) -> Any:
            if failure.check(ConnectionLost, NotConnected):
                return handle
            self._forget_subscription(handle)
            return failure

        return handle.subscribe_on(session).addCallbacks(lambda _: handle, refused)

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
        """:meth:`Session.publish` on the current session; :class:`NotConnected` when not joined."""
        session = self.session
        if session is None:
            return defer.fail(NotConnected(f"cannot publish to {topic}: client is {self._state.value}"))
        return session.publish(
            topic,
            *args,
            acknowledge=acknowledge,
            exclude_me=exclude_me,
            retain=retain,
            exclude=exclude,
            eligible=eligible,
            **kwargs,
        )

    # -- the state machine ----------------------------------------------------------------

    def _set_state(self, state: ClientState) -> None:
        if state is not self._state:
            log.debug("client {url}: {old} -> {new}", url=self.url, old=self._state.value, new=state.value)
            self._state = state

    def _start(self) -> None:
        """DISCONNECTED / GIVEN_UP -> CONNECTING (a fresh start: failures counted anew)."""
        self.reconnect_attempts = 0
        self._attempt_now()

    def _attempt_now(self) -> None:
        self._timer = None
        self._set_state(ClientState.CONNECTING)
        attempt = self._open_session()
        self._attempt = attempt
        attempt.addCallbacks(
            self._attempt_joined, self._attempt_failed, callbackArgs=(attempt,), errbackArgs=(attempt,)
        )

    def _open_session(self) -> defer.Deferred[Session]:
        """One connection attempt (overridden in tests to drive the state machine)."""
        adopted, self._adopted = self._adopted, None
        if adopted is not None and adopted.is_joined:
            self._emit("connect", adopted)
            return defer.succeed(adopted)
        return open_session(
            self.url,
            self.realm,
            timeout=self.connect_timeout,
            reactor=self.reactor,
            on_session=lambda session: self._emit("connect", session),
            **self._connect_options,
        )

    def _attempt_joined(self, session: Session, attempt: defer.Deferred[Session]) -> None:
        if self._attempt is attempt:
            self._attempt = None
        if self._state is not ClientState.CONNECTING or self._session is not None:
            session.close()  # closed or superseded meanwhile
            return
        self._session = session
        self.reconnect_attempts = 0
        self._set_state(ClientState.JOINED)
        session.on("leave", self._session_left)
        session.on("close", self._session_closed)
        restored: list[defer.Deferred[Any]] = [handle.register_on(session) for handle in self._registrations.values()]
        restored += [handle.subscribe_on(session) for handle in list(self._subscriptions)]
        for d in restored:
            d.addErrback(self._restore_failed)
        defer.DeferredList(restored).addCallback(lambda _: self._restored(session))

    def _restored(self, session: Session) -> None:
        if self._session is not session or self._state is not ClientState.JOINED:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(session)
        self._emit("join", session)

    def _attempt_failed(self, failure: Failure, attempt: defer.Deferred[Session]) -> None:
        current = self._attempt is attempt
        if current:
            self._attempt = None
        if self._state is not ClientState.CONNECTING:
            return  # cancelled by close()
        if current:
            self._emit("attempt_failed", failure.value)  # before "reconnect_failed", if it comes to that
        log.debug("client {url}: connection attempt failed: {error}", url=self.url, error=failure.value)
        error = failure.value
        assert error is not None
        if failure.check(ValueError, TypeError):  # a bad URL or argument: retrying cannot help
            self._give_up(error)
            return
        self._retry(error)

    def _session_left(self, session: Session, reason: str) -> None:
        """The session ended (before its pending requests fail): change state and fire
        ``disconnect`` now, so that an errback of a failed request sees the client as
        not joined. ``disconnect`` gets the close code and reason when the connection is
        gone already, else ``(1000, reason URI)``: the connection closes right after."""
        if self._session is not session or self._state is not ClientState.JOINED:
            self._emit("leave", session, reason)
            return
        self._session = None
        if session.state is SessionState.CLOSED:
            code, close_reason = session.connection.close_code, session.connection.close_reason
        else:
            code, close_reason = 1000, reason
        self._retry(ConnectionLost(f"session with {self.url} ended ({reason})", code, close_reason))
        self._emit("leave", session, reason)
        self._emit("disconnect", code, close_reason)

    def _session_closed(self, session: Session, code: int, reason: str) -> None:
        if self._session is not session:
            return
        self._session = None
        if self._state is ClientState.JOINED:
            self._retry(ConnectionLost(f"connection to {self.url} lost ({code} {reason})".rstrip(), code, reason))
        # listeners see the state the client is now in (backing off, given up, ...)
        self._emit("disconnect", code, reason)

    def _retry(self, error: BaseException) -> None:
        """After a failed attempt or a lost connection: back off, or stop."""
        if not self.reconnect:
            self._set_state(ClientState.DISCONNECTED)
            self._fail_waiters(NotConnected(f"not connected (reconnect is off): {error}"))
            return
        if self.max_reconnects and self.reconnect_attempts >= self.max_reconnects:
            self._give_up(error)
            return
        delay = self.backoff.delay(self.reconnect_attempts, self.random.random)
        self.reconnect_attempts += 1
        self._set_state(ClientState.BACKING_OFF)
        log.info(
            "client: {error}; reconnecting in {delay:.1f} s (attempt {n})",
            url=self.url,
            error=error,
            delay=delay,
            n=self.reconnect_attempts,
        )
        self._timer = self.reactor.callLater(delay, self._attempt_now)

    def _give_up(self, error: BaseException) -> None:
        self._set_state(ClientState.GIVEN_UP)
        log.warn(
            "client {url}: giving up after {n} reconnect attempts: {error}",
            url=self.url,
            n=self.reconnect_attempts,
            error=error,
        )
        self._fail_waiters(
            NotConnected(
                f"gave up connecting to {self.url} after {self.reconnect_attempts} reconnect attempts: {error}"
            )
        )
        self._emit("reconnect_failed")

    def _stop(self, why: str) -> Session | None:
        """Any state -> DISCONNECTED, without reconnecting; returns the session to end."""
        self._set_state(ClientState.DISCONNECTED)
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        attempt, self._attempt = self._attempt, None
        if attempt is not None and not attempt.called:
            attempt.cancel()
        self._fail_waiters(NotConnected(why))
        session, self._session = self._session, None
        return session

    # -- helpers ------------------------------------------------------------------------

    def _wait(self, timeout: float | None) -> defer.Deferred[Session]:
        """A Deferred for the next join; fails with NotConnected after ``timeout`` seconds."""
        d: defer.Deferred[Session] = defer.Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(d)
        if timeout is not None:
            timer = self.reactor.callLater(timeout, self._wait_timed_out, d, timeout)

            def stop_timer(result: Any) -> Any:
                if timer.active():
                    timer.cancel()
                return result

            d.addBoth(stop_timer)
        return d

    def _wait_timed_out(self, d: defer.Deferred[Session], timeout: float) -> None:
        if d in self._waiters:
            self._waiters.remove(d)
        if not d.called:
            d.errback(NotConnected(f"no session with {self.url} within {timeout} s (client is {self._state.value})"))

    def _fail_waiters(self, error: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.errback(error)

    def _restore_failed(self, failure: Failure) -> None:
        if not failure.check(ConnectionLost, NotConnected):
            log.warn("client {url}: could not restore after reconnect: {error}", url=self.url, error=failure.value)

    def _forget_registration(self, handle: ClientRegistration) -> None:
        if self._registrations.get(handle.procedure) is handle:
            del self._registrations[handle.procedure]

    def _forget_subscription(self, handle: ClientSubscription) -> None:
        if handle in self._subscriptions:
            self._subscriptions.remove(handle)

    def _emit(self, event: str, *args: Any) -> None:
        self._listeners.emit(event, *args)

    def _user_error(self, failure: Failure, what: str) -> None:
        self.on_user_error(failure, what)


__all__ = ["Backoff", "Client", "ClientState"]
