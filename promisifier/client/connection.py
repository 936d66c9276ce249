"""Opening a session: TCP or TLS from the URL, the WebSocket (or RawSocket) handshake, then
HELLO/WELCOME.

:func:`connect` is the one call a Python program needs::

    session = yield connect("ws://127.0.0.1:8080/ws", "realm1")
    result = yield session.call("com.example.add", 2, 3)

``rs://host:port`` (``rss://`` with TLS) speaks WAMP over RawSocket instead of WebSocket
(:mod:`promisifier.transport.rawsocket`), with the same :class:`Session`.

It fails with a :class:`~promisifier.client.errors.ClientError` naming the URL in each case
where no session comes out of it: a URL it cannot use (:class:`InvalidURL`), the TCP or TLS
connection is refused or cannot be made (:class:`ConnectFailed`), the
WebSocket or RawSocket handshake fails (:class:`ConnectionClosed` with the reason), the router refuses
the session (:class:`SessionAborted`), or nothing completes within ``timeout`` seconds
(:class:`ConnectTimeout`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from autobahn.websocket.util import parse_url
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client.auth import default_authmethods
from promisifier.client.errors import ConnectFailed, ConnectionClosed, ConnectTimeout, InvalidURL
from promisifier.client.session import Session
from promisifier.client.tls import TlsOptions
from promisifier.client.user_errors import UserErrorHook
from promisifier.transport.rawsocket import RawSocketClientFactory
from promisifier.transport.rawsocket_framing import HANDSHAKE_ERRORS
from promisifier.transport.tls_errors import TLS_FAILED
from promisifier.transport.websocket import WampClientFactory, WampClientProtocol

log = Logger(namespace="promisifier.client")

#: seconds the router has to answer our WebSocket close frame before TCP is dropped
CLOSE_HANDSHAKE_TIMEOUT = 5.0


def connect(
    url: str,
    realm: str,
    *,
    serializers: Iterable[str] = ("msgpack", "json"),
    authid: str | None = None,
    authmethods: list[str] | tuple[str, ...] | None = None,
    credentials: dict[str, Any] | None = None,
    timeout: float = 10.0,
    reactor: Any = None,
    on_user_error: UserErrorHook | None = None,
    tls: TlsOptions | dict[str, Any] | None = None,
) -> defer.Deferred[Session]:
    """Connect to the router at ``url`` (``ws://`` or ``wss://``; ``rs://host:port`` or
    ``rss://host:port`` for RawSocket) and join ``realm``.

    ``serializers`` are offered in order of preference (``"msgpack"``, ``"json"``); RawSocket
    asks for one serializer only, the first.
    ``credentials`` is ``{"ticket": ...}`` or ``{"secret": ...}`` (WAMP-CRA) for a router
    that sends CHALLENGE; ``authmethods`` defaults to what the credentials allow, and
    ``authid`` is the identity asked for. ``timeout`` bounds the whole of it: TCP,
    TLS, WebSocket handshake and join. Cancelling the Deferred abandons the attempt.
    ``on_user_error(failure, what)`` is the session's hook for exceptions raised by the
    application's handlers, procedures and callbacks (default: logged with the traceback).
    ``tls`` (:class:`~promisifier.client.tls.TlsOptions` or a dict of its fields:
    ``ca_file``, ``cert_file``, ``key_file``, ``server_name``) sets up ``wss://``/``rss://``.
    """
    return open_session(
        url,
        realm,
        serializers=serializers,
        authid=authid,
        authmethods=authmethods,
        credentials=credentials,
        timeout=timeout,
        reactor=reactor,
        on_user_error=on_user_error,
        tls=tls,
    )


def open_session(
    url: str,
    realm: str,
    *,
    serializers: Iterable[str] = ("msgpack", "json"),
    authid: str | None = None,
    authmethods: list[str] | tuple[str, ...] | None = None,
    credentials: dict[str, Any] | None = None,
    timeout: float = 10.0,
    reactor: Any = None,
    on_session: Callable[[Session], None] | None = None,
    on_user_error: UserErrorHook | None = None,
    tls: TlsOptions | dict[str, Any] | None = None,
) -> defer.Deferred[Session]:
    """:func:`connect`, plus ``on_session(session)`` called when the WebSocket is open
    (before HELLO is sent). Used by the reconnecting client."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    tls = TlsOptions.coerce(tls)
    if authmethods is None and tls is not None and tls.cert_file is not None:
        # a client certificate is a credential too: offer "tls" first, then the others (or
        # anonymous when there are no others)
        authmethods = ["tls", *(default_authmethods(credentials) or ["anonymous"])]
    attempt = _Attempt(
        url,
        realm,
        serializers=tuple(serializers),
        session_options={
            "authid": authid,
            "authmethods": authmethods,
            "credentials": credentials,
            "on_user_error": on_user_error,
        },
        timeout=timeout,
        reactor=reactor,
        on_session=on_session,
        tls=tls,
    )
    return attempt.start()


class _Attempt:
    """One connection attempt and the one Deferred that reports how it ended."""

    def __init__(
        self,
        url: str,
        realm: str,
        *,
        serializers: tuple[str, ...],
        session_options: dict[str, Any],
        timeout: float,
        reactor: Any,
        on_session: Callable[[Session], None] | None,
        tls: TlsOptions | None = None,
    ) -> None:
        self.url = url
        self.tls = tls
        self.realm = realm
        self.serializers = serializers
        self.session_options = session_options
        self.timeout = timeout
        self.reactor = reactor
        self.on_session = on_session
        self.result: defer.Deferred[Session] = defer.Deferred(lambda _: self._abandon())
        self.stage = "connecting"
        self.tcp: defer.Deferred[Any] | None = None
        self.connection: WampClientProtocol | None = None
        self.session: Session | None = None
        self.timer: Any = None
        self.abandoned = False

    def start(self) -> defer.Deferred[Session]:
        try:
            if urlsplit(self.url).scheme.lower() in RAWSOCKET_SCHEMES:
                return self._start_rawsocket()
            is_secure, host, port, _resource, _path, _params = _parse_websocket_url(self.url)
            factory = WampClientFactory(
                self.url,
                self._make_session,
                serializers=self.serializers,
                # our own timer (below) reports the timeout; autobahn's is a backstop
                open_handshake_timeout=self.timeout + 1.0,
                on_open_failed=self._open_failed,
                reactor=self.reactor,
            )
            # autobahn's batched timers truncate delays to whole seconds, so its default
            # 1 s closing handshake timeout can fire within milliseconds and turn a clean
            # close into 1006: give the router a few seconds to answer our close frame.
            factory.setProtocolOptions(closeHandshakeTimeout=CLOSE_HANDSHAKE_TIMEOUT)
            factory.noisy = False
            if not isinstance(port, int):
                raise InvalidURL(f"{self.url}: Unix socket URLs are not supported")
            endpoint: Any = _tcp_endpoint(self.reactor, host, port, self.timeout)
            if is_secure:
                endpoint = wrapClientTLS(_tls_options(host, self.tls), endpoint)
        except Exception as error:
            return defer.fail(error)
        self.timer = self.reactor.callLater(self.timeout, self._timed_out)
        self.tcp = endpoint.connect(factory)
        self.tcp.addCallbacks(self._tcp_connected, self._tcp_failed)
        return self.result

    def _start_rawsocket(self) -> defer.Deferred[Session]:
        try:
            is_secure, host, port = parse_rawsocket_url(self.url)
        except ValueError as error:
            return defer.fail(InvalidURL(str(error)))
        if not self.serializers:
            raise ValueError("no serializer to ask for")
        factory = RawSocketClientFactory(
            self._make_session, serializer=self.serializers[0], on_open_failed=self._rawsocket_open_failed
        )
        endpoint: Any = _tcp_endpoint(self.reactor, host, port, self.timeout)
        if is_secure:
            endpoint = wrapClientTLS(_tls_options(host, self.tls), endpoint)
        self.timer = self.reactor.callLater(self.timeout, self._timed_out)
        self.tcp = endpoint.connect(factory)
        self.tcp.addCallbacks(self._rawsocket_connected, self._tcp_failed)
        return self.result

    # -- stages -------------------------------------------------------------------------

    def _rawsocket_connected(self, protocol: Any) -> None:
        self.tcp = None
        self.connection = protocol
        if self.session is None:  # the handshake reply may have come with the connection
            self.stage = "RawSocket handshake"

    def _rawsocket_open_failed(self, connection: Any, code: int, reason: str) -> None:
        if code in HANDSHAKE_ERRORS:
            text = f"router refused: {reason} (RawSocket error {code})"
        elif reason.startswith(TLS_FAILED):
            self._fail(ConnectFailed(self.url, reason))
            return
        else:
            text = reason or "connection closed during the RawSocket handshake"
        self._fail(ConnectionClosed(connection.close_code, text, f"RawSocket handshake with {self.url} failed: {text}"))

    def _tcp_connected(self, protocol: WampClientProtocol) -> None:
        self.tcp = None
        self.connection = protocol
        self.stage = "WebSocket handshake"
        # autobahn resolves is_closed when the connection ends, opened or not. (The
        # factory's on_open_failed hook is not enough: the transport's ``connected`` flag
        # is also Twisted's BaseProtocol.connected, set as soon as TCP is up.)
        protocol.is_closed.addCallback(self._closed_before_open)

    def _closed_before_open(self, protocol: WampClientProtocol) -> None:
        if self.session is None:  # once the WebSocket is open, the session reports the end
            self._open_failed(protocol, None, protocol.tls_failure or protocol.wasNotCleanReason)

    def _tcp_failed(self, failure: Any) -> None:
        self.tcp = None
        if failure.check(defer.CancelledError) or not failure.check(Exception):
            self._fail(failure)
            return
        self._fail(ConnectFailed(self.url, connect_failure_reason(failure.value), failure.value))

    def _make_session(self, connection: Any) -> Session:
        self.stage = "joining the realm"
        session = Session(connection, self.realm, clock=self.reactor, **self.session_options)
        self.session = session
        if self.on_session is not None:
            try:
                self.on_session(session)
            except Exception:
                session.on_user_error(Failure(), "on_session callback")
        session.join().addCallbacks(self._joined, self._fail)
        return session

    def _open_failed(self, connection: WampClientProtocol, code: int | None, reason: str | None) -> None:
        if reason and reason.startswith(TLS_FAILED):
            self._fail(ConnectFailed(self.url, reason))
            return
        code = code if code is not None else 1006
        text = reason or "connection closed during the WebSocket opening handshake"
        self._fail(ConnectionClosed(code, text, f"WebSocket handshake with {self.url} failed: {text}"))

    def _joined(self, session: Session) -> None:
        if self.result.called:
            session.connection.drop()
            return
        self._stop_timer()
        self.result.callback(session)

    # -- ends ---------------------------------------------------------------------------

    def _fail(self, failure: Any) -> None:
        if self.result.called or self.abandoned:
            return
        self._stop_timer()
        self.result.errback(failure)

    def _timed_out(self) -> None:
        self.timer = None
        if self.result.called:
            return
        self.result.errback(ConnectTimeout(f"no session with {self.url} within {self.timeout} s (stuck {self.stage})"))
        self._abandon()

    def _abandon(self) -> None:
        """Stop whatever is in progress (timeout or the caller cancelled)."""
        self.abandoned = True
        self._stop_timer()
        tcp, self.tcp = self.tcp, None
        if tcp is not None:
            tcp.cancel()
        if self.connection is not None:
            self.connection.drop()

    def _stop_timer(self) -> None:
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()


def connect_failure_reason(error: BaseException) -> str:
    """A few words saying why a TCP (or TLS) connection could not be made."""
    from twisted.internet import error as net

    if isinstance(error, net.ConnectionRefusedError):
        return "connection refused (is the relay running?)"
    if isinstance(error, net.DNSLookupError):
        return "unknown host"
    if isinstance(error, (net.TCPTimedOutError, net.TimeoutError)):
        return "no answer (timed out)"
    if isinstance(error, net.NoRouteError):
        return "no route to host"
    text = " ".join(str(error).split()).rstrip(".")
    return text or type(error).__name__


def _parse_websocket_url(url: str) -> tuple[bool, str, int | None, str, str, dict[str, Any]]:
    """autobahn's ``parse_url``, failing with :class:`InvalidURL`."""
    try:
        parsed: tuple[bool, str, int | None, str, str, dict[str, Any]] = parse_url(url)
        return parsed
    except Exception as error:  # noqa: BLE001 - autobahn raises plain Exception
        raise InvalidURL(f"{url}: {error} (use ws://host:port/path, wss://..., rs://host:port or rss://...)") from None


#: URL schemes of WAMP over RawSocket (plain TCP, TLS)
RAWSOCKET_SCHEMES = ("rs", "rss")


def parse_rawsocket_url(url: str) -> tuple[bool, str, int]:
    """``rs://host:port`` or ``rss://host:port`` -> (is_secure, host, port). Raises
    ``ValueError`` for anything else (a RawSocket URL has no path, and needs a port)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in RAWSOCKET_SCHEMES:
        raise ValueError(f"{url}: not a RawSocket URL (rs://host:port or rss://host:port)")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"{url}: a RawSocket URL needs a host and a port ({scheme}://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url}: a RawSocket URL has nothing after the port ({scheme}://host:port)")
    return scheme == "rss", parts.hostname, port


def _tcp_endpoint(reactor: Any, host: str, port: int, timeout: float) -> Any:
    """A plain TCP endpoint for an IP address (no resolver, no attempt delay), else HostnameEndpoint."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return HostnameEndpoint(reactor, host, port, timeout=timeout)
    if address.version == 6:
        return TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    return TCP4ClientEndpoint(reactor, host, port, timeout=timeout)


def _tls_options(host: str, tls: TlsOptions | None = None) -> Any:
    try:
        from twisted.internet.ssl import optionsForClientTLS

        if tls is not None:
            return tls.creator(host)
        return optionsForClientTLS(host)
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            f"wss:// and rss:// need Twisted's TLS support (pip install 'twisted[tls]'): {error}"
        ) from None


__all__ = ["connect", "open_session"]
