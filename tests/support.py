"""Helpers shared by the integration tests: a router on an ephemeral port, autobahn clients.

Everything talks over real sockets on 127.0.0.1. Waits are bounded by ``within``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autobahn.twisted.wamp import ApplicationSession, WampWebSocketClientFactory
from autobahn.wamp import serializer as ab_serializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from promisifier.embed import Router
from promisifier.router import RouterConfig

#: default bound on any wait in a test (seconds)
WAIT = 10.0

SERIALIZER_NAMES = ("json", "msgpack")


def within(d: defer.Deferred, seconds: float = WAIT) -> defer.Deferred:
    """``d`` with a timeout: fails with ``defer.TimeoutError`` after ``seconds``."""
    return d.addTimeout(seconds, reactor)


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that were free a moment ago (the OS picked
    them; all are held until all are picked, so none comes twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def until(predicate: Callable[[], bool], seconds: float = WAIT, every: float = 0.01) -> defer.Deferred:
    """Fires with True once ``predicate()`` holds (checked every ``every`` seconds), or
    with False after ``seconds``: for state that no Deferred reports."""
    done: defer.Deferred = defer.Deferred()
    deadline = reactor.seconds() + seconds

    def check() -> None:
        if predicate():
            done.callback(True)
        elif reactor.seconds() > deadline:
            done.callback(False)
        else:
            reactor.callLater(every, check)

    check()
    return done


def router_idle(router: Any, seconds: float = WAIT) -> defer.Deferred:
    """Fires with ``router.state_counts()`` once every count is zero (checked whenever one
    of the router's connections ends); fails with AssertionError after ``seconds``."""

    def idle() -> bool:
        return not any(router.state_counts().values())

    if idle():
        return defer.succeed(router.state_counts())
    done: defer.Deferred = defer.Deferred()
    original = router.session_ended

    def session_ended(session: Any) -> None:
        original(session)
        if not done.called and idle():
            done.callback(router.state_counts())

    router.session_ended = session_ended

    def restore(result: Any) -> Any:
        if router.__dict__.get("session_ended") is session_ended:
            del router.session_ended
        return result

    def explain(failure: Any) -> None:
        failure.trap(defer.TimeoutError)
        raise AssertionError(f"router state not back to zero after {seconds} s: {router.state_counts()}")

    return within(done, seconds).addBoth(restore).addErrback(explain)


@dataclass
class RunningRouter:
    """A router listening on 127.0.0.1 on an ephemeral port."""

    router: Router
    port: Any  # IListeningPort
    path: str = "/ws"

    @property
    def port_number(self) -> int:
        return self.port.getHost().port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port_number}{self.path}"

    @defer.inlineCallbacks
    def stop(self):
        # as the relay service does: no new connections first, then close the sessions
        yield self.port.stopListening()
        yield within(self.router.stop())


@defer.inlineCallbacks
def start_router(config: RouterConfig | None = None, path: str = "/ws"):
    """Start a :class:`Router` on ``tcp:0:interface=127.0.0.1``; fires with RunningRouter."""
    router = Router(config)
    port = yield router.listen("tcp:0:interface=127.0.0.1", path)
    return RunningRouter(router, port, path)


class JudgingSerializer:
    """Wraps an autobahn serializer and records every frame it had to parse.

    autobahn is a strict judge of what a router sends: anything it cannot parse is kept
    in ``failures`` (and re-raised, so autobahn drops the connection as it would).
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        # autobahn copies its serializer per connection (copy.copy): the shared, mutable
        # record below is seen by every copy.
        self.failures: list[tuple[bytes, Exception]] = []
        self._counts = {"parsed": 0}

    @property
    def parsed(self) -> int:
        """Number of WAMP messages parsed without error."""
        return self._counts["parsed"]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_inner", "_counts"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def unserialize(self, payload: bytes, isBinary: bool | None = None) -> Any:  # noqa: N803
        try:
            messages = self._inner.unserialize(payload, isBinary)
        except Exception as error:
            self.failures.append((payload, error))
            raise
        self._counts["parsed"] += len(messages)
        return messages


def autobahn_serializer(name: str) -> Any:
    """A fresh autobahn WAMP serializer for ``"json"``, ``"msgpack"`` or ``"cbor"``."""
    if name == "json":
        return ab_serializer.JsonSerializer()
    if name == "msgpack":
        return ab_serializer.MsgPackSerializer()
    if name == "cbor":
        return ab_serializer.CBORSerializer()
    raise ValueError(name)


class RecordingSession(ApplicationSession):
    """An autobahn ApplicationSession whose join and leave can be waited for."""

    def __init__(self, config: ComponentConfig | None = None) -> None:
        super().__init__(config)
        self.joined: defer.Deferred = defer.Deferred()
        self.left: defer.Deferred = defer.Deferred()
        self.disconnected: defer.Deferred = defer.Deferred()
        self.join_details: Any = None

    def onJoin(self, details: Any) -> None:  # noqa: N802
        self.join_details = details
        if not self.joined.called:
            self.joined.callback(self)

    def onLeave(self, details: Any) -> None:  # noqa: N802
        if not self.joined.called:
            self.joined.errback(RuntimeError(f"session did not join: {details.reason} {details.message}"))
        if not self.left.called:
            self.left.callback(details)
        super().onLeave(details)

    def onDisconnect(self) -> None:  # noqa: N802
        if not self.joined.called:
            self.joined.errback(RuntimeError("disconnected before joining"))
        if not self.disconnected.called:
            self.disconnected.callback(None)


@defer.inlineCallbacks
def connect_autobahn(
    url: str,
    realm: str = "realm1",
    serializer: str = "json",
    session_class: Callable[..., RecordingSession] = RecordingSession,
):
    """Connect an autobahn-python client session and wait until it has joined.

    The session's ``judge`` attribute is the :class:`JudgingSerializer` that parsed every
    frame the router sent.
    """
    judge = JudgingSerializer(autobahn_serializer(serializer))
    session = session_class(ComponentConfig(realm=realm))
    session.judge = judge
    factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[judge])
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    endpoint = TCP4ClientEndpoint(reactor, host, int(port), timeout=WAIT)
    yield within(endpoint.connect(factory))
    yield within(session.joined)
    return session


@defer.inlineCallbacks
def leave_and_wait(session: RecordingSession):
    """Leave the session (GOODBYE) and wait until its transport is gone."""
    if session.is_attached():
        session.leave()
    yield within(session.disconnected)
