"""Helpers for the authentication and authorization tests: autobahn-python clients that
authenticate (anonymous, ticket, WAMP-CRA) and routers started with a given config.

An :class:`AuthSession` settles once: ``"joined"`` (WELCOME) or ``"aborted"`` (ABORT,
kept in ``abort``). Every wait is bounded by ``within``; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.twisted.wamp import WampWebSocketClientFactory
from autobahn.wamp.auth import compute_wcs, derive_key
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS

from promisifier.embed import Router
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig
from tests.support import WAIT, JudgingSerializer, RecordingSession, RunningRouter, autobahn_serializer, within


class AuthSession(RecordingSession):
    """An autobahn session that joins with ``authmethods`` / ``authid`` and answers challenges.

    ``secret``: the ticket, or the WAMP-CRA secret (the key is derived with PBKDF2 when the
    CHALLENGE carries a salt). ``answer``: a function of the autobahn Challenge returning the
    signature, to answer something else.
    """

    def __init__(
        self,
        config: ComponentConfig,
        authmethods: list[str] | None = None,
        authid: str | None = None,
        secret: str | None = None,
        answer: Callable[[Any], str] | None = None,
        authextra: dict | None = None,
    ) -> None:
        super().__init__(config)
        self.hello_authextra = authextra
        self.authmethods = authmethods
        self.requested_authid = authid
        self.secret = secret
        self.answer = answer
        #: every CHALLENGE received (autobahn ``Challenge``: method, extra)
        self.challenges: list[Any] = []
        #: the signatures sent in AUTHENTICATE
        self.signatures: list[str] = []
        #: the WELCOME message, once joined
        self.welcome: Any = None
        #: CloseDetails(reason, message) of an ABORT received before joining
        self.abort: Any = None
        #: every WAMP message received after the session joined
        self.received: list[Any] = []
        #: fires with "joined" or "aborted"
        self.settled: defer.Deferred = defer.Deferred()
        # ``joined`` fails when the session is refused; ``settled`` is what the tests use
        self.joined.addErrback(lambda _: None)

    def onConnect(self) -> None:  # noqa: N802 - autobahn API
        self.join(
            self.config.realm,
            authmethods=self.authmethods,
            authid=self.requested_authid,
            authextra=self.hello_authextra,
        )

    def onChallenge(self, challenge: Any) -> str:  # noqa: N802 - autobahn API
        self.challenges.append(challenge)
        if self.answer is not None:
            signature = self.answer(challenge)
        elif challenge.method == "ticket":
            signature = self.secret
        elif challenge.method == "wampcra":
            key: Any = self.secret
            extra = challenge.extra
            if "salt" in extra:
                key = derive_key(self.secret, extra["salt"], extra["iterations"], extra["keylen"])
            signature = compute_wcs(key, extra["challenge"]).decode("ascii")
        else:
            raise RuntimeError(f"unexpected challenge method {challenge.method!r}")
        self.signatures.append(signature)
        return signature

    def onWelcome(self, welcome: Any) -> None:  # noqa: N802 - autobahn API
        self.welcome = welcome
        return None

    def onJoin(self, details: Any) -> None:  # noqa: N802 - autobahn API
        super().onJoin(details)
        if not self.settled.called:
            self.settled.callback("joined")

    def onLeave(self, details: Any) -> None:  # noqa: N802 - autobahn API
        if not self.settled.called:
            self.abort = details
            self.settled.callback("aborted")
        super().onLeave(details)

    def onDisconnect(self) -> None:  # noqa: N802 - autobahn API
        super().onDisconnect()
        if not self.settled.called:
            self.settled.callback("disconnected")

    def onMessage(self, msg: Any) -> None:  # noqa: N802 - autobahn API
        if self.session_id is not None:
            self.received.append(msg)
        return super().onMessage(msg)


@defer.inlineCallbacks
def connect_auth(
    url: str,
    realm: str = "realm1",
    serializer: str = "json",
    *,
    authmethods: list[str] | None = None,
    authid: str | None = None,
    secret: str | None = None,
    answer: Callable[[Any], str] | None = None,
    authextra: dict | None = None,
    tls: Any = None,
    expect: str | None = "joined",
    on_session: Callable[[AuthSession], None] | None = None,
):
    """Connect an :class:`AuthSession` and wait until it settles (joined or aborted).

    ``expect``: "joined" or "aborted" (checked, with the ABORT details in the message), or
    None to accept either. ``on_session`` sees the session before it connects. An aborted session's transport is gone when this fires.
    """
    judge = JudgingSerializer(autobahn_serializer(serializer))
    session = AuthSession(ComponentConfig(realm=realm), authmethods, authid, secret, answer, authextra)
    session.judge = judge
    if on_session is not None:
        on_session(session)
    factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[judge])
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    endpoint: Any = TCP4ClientEndpoint(reactor, host, int(port), timeout=WAIT)
    if tls is not None:  # a Twisted client TLS connection creator (optionsForClientTLS)
        endpoint = wrapClientTLS(tls, endpoint)
    yield within(endpoint.connect(factory))
    outcome = yield within(session.settled)
    if outcome != "joined":
        yield within(session.disconnected)
    if expect is not None and outcome != expect:
        abort = session.abort
        raise AssertionError(
            f"expected {expect}, got {outcome}" + (f" ({abort.reason}: {abort.message})" if abort is not None else "")
        )
    assert not judge.failures, judge.failures
    return session


@defer.inlineCallbacks
def leave(session: AuthSession):
    """Leave a joined session and wait until its transport is gone."""
    if session.is_attached():
        session.leave()
    yield within(session.disconnected)


class Routers:
    """Starts routers on 127.0.0.1 (with extra listeners) and stops them all at the end."""

    def __init__(self) -> None:
        self._started: list[tuple[Router, list[Any]]] = []

    @defer.inlineCallbacks
    def start(self, config: RouterConfig, path: str = "/ws", auth: AuthConfig | None = None):
        """A router listening once (with ``auth``, or the config's); fires with RunningRouter."""
        router = Router(config)
        ports: list[Any] = []
        self._started.append((router, ports))
        port = yield router.listen("tcp:0:interface=127.0.0.1", path, auth=auth)
        ports.append(port)
        return RunningRouter(router, port, path)

    @defer.inlineCallbacks
    def add_listener(self, running: RunningRouter, path: str = "/ws", auth: AuthConfig | None = None):
        """Another listener of the same router; fires with its ws:// URL."""
        port = yield running.router.listen("tcp:0:interface=127.0.0.1", path, auth=auth)
        for router, ports in self._started:
            if router is running.router:
                ports.append(port)
        return f"ws://127.0.0.1:{port.getHost().port}{path}"

    @defer.inlineCallbacks
    def listen(self, running: RunningRouter, endpoint: Any, path: str = "/ws", auth: AuthConfig | None = None):
        """Another listener of the same router on a server endpoint (e.g. TLS); fires with its port."""
        port = yield running.router.listen(endpoint, path, auth=auth)
        for router, ports in self._started:
            if router is running.router:
                ports.append(port)
        return port

    @defer.inlineCallbacks
    def stop_all(self):
        for router, ports in self._started:
            yield within(router.stop())
            for port in ports:
                yield port.stopListening()
        self._started.clear()


@defer.inlineCallbacks
def application_error(d: defer.Deferred):
    """Wait for ``d`` to fail with ApplicationError; fire with that error."""
    try:
        value = yield within(d)
    except ApplicationError as error:
        return error
    raise AssertionError(f"expected an ApplicationError, got result {value!r}")
