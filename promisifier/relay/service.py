"""The relay service run by ``twistd promisifier-relay`` and ``python -m promisifier relay``.

Starting it builds a :class:`~promisifier.router.RouterCore` and listens on every listener of
its :class:`~promisifier.relay.relay_config.RelayConfig`, each with a web site serving WAMP at the
listener's path and the plain WebSocket endpoints at theirs, or (``transport =
"rawsocket"``) with the router's RawSocket factory. Stopping it stops listening,
then closes every session with ``router.stop()`` (GOODBYE ``wamp.close.system_shutdown``),
so SIGTERM ends the process cleanly.

With a config file, SIGHUP (or :meth:`RelayService.reload`) reads the file again: a valid
file is applied (``router.reload``; listeners whose endpoint changed are re-bound, the
others keep their port and serve the new settings to new connections); an invalid one is
logged and the running configuration stays.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import CancelledError, Deferred, DeferredLock, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.cluster.cluster_config import ClusterConfig
from promisifier.cluster.node import ClusterNode
from promisifier.listen import deadline_site
from promisifier.relay.command_line import RelayOptions
from promisifier.relay.endpoints import cannot_listen
from promisifier.relay.memory import release_startup_memory
from promisifier.relay.open_files import raise_open_file_limit
from promisifier.relay.relay_config import ConfigError, ListenerConfig, RelayConfig, default_config, load_config
from promisifier.relay.shared_sockets import InheritedSocket, worker_endpoint
from promisifier.relay.site import (
    listener_options,
    listener_rawsocket_factory,
    listener_root,
    reconfigure_listener_rawsocket_factory,
)
from promisifier.relay.tls_listener import server_endpoint
from promisifier.relay.web import RelayWeb
from promisifier.router import RouterCore
from promisifier.router.auth import AuthConfig
from promisifier.router.revocation import still_admitted
from promisifier.transport.closing import CloseCode
from promisifier.transport.handshake import HandshakeDeadlineSite
from promisifier.transport.plain_websocket import PlainWebSocketFactory
from promisifier.wire import ErrorURI

log = Logger(namespace="promisifier.relay")

#: seconds ``stopService`` waits for the router to close its sessions before giving up
STOP_TIMEOUT = 10.0


def make_service(options: RelayOptions, reactor=None) -> IService:
    """The relay service for parsed :class:`RelayOptions` (not started yet): with
    ``--workers N`` (N > 1), the parent of N workers
    (:class:`~promisifier.relay.workers.WorkersService`).

    A malformed endpoint string raises ``ValueError`` here, before anything runs.
    """
    settings = {
        "endpoint": options["endpoint"],
        "path": options["path"],
        "realms": options["realms"],
        "max_message_size": options["max-message-size"],
        "shutdown_grace": options["shutdown-grace"],
        "rawsockets": options["rawsockets"],
    }
    config = options.relay_config or default_config(**settings, cluster=options.cluster_config)
    if options.workers > 1:
        from promisifier.relay.workers import WorkersService

        return WorkersService(
            config,
            options.workers,
            config_file=options["config"],
            options={key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()},
            log_format=options["log-format"] or "text",
            log_level=options["log-level"] or "info",
            reactor=reactor,
        )
    return RelayService(config, config_file=options["config"], reactor=reactor, own_process=True)


def start_cluster_node(router: RouterCore, config: ClusterConfig, reactor: Any) -> ClusterNode:
    """Link ``router`` to the other relays on the Redis of ``config``."""
    from promisifier.cluster.redis_bus import RedisBus  # txredisapi only for a cluster

    node = ClusterNode(router, RedisBus(config, reactor))
    node.start()
    return node


def _files_state(names: tuple[str, ...]) -> tuple[Any, ...]:
    """What a TLS listener's files look like now (a renewed certificate changes it)."""
    state = []
    for name in names:
        try:
            stat = os.stat(name)
            state.append((name, stat.st_mtime_ns, stat.st_size, stat.st_ino))
        except OSError:
            state.append((name, None))
    return tuple(state)


def _add_home_page(root: Any, config: ListenerConfig, web: RelayWeb | None) -> None:
    """``GET /`` answers a small page linking the status page, where there is one."""
    page = web.home_page(config) if web is not None else None
    children = getattr(root, "children", None)
    if page is not None and children is not None and b"" not in children:
        root.putChild(b"", page)


def _quiet_paths(config: ListenerConfig) -> frozenset[bytes]:
    """What a status page, a load balancer or Prometheus polls: logged at debug."""
    paths = config.web_paths()
    return frozenset(paths[name].encode() for name in ("status.json", "health", "metrics") if name in paths)


class Listener:
    """One listening endpoint of the relay: its settings, its web site and its port."""

    def __init__(
        self, config: ListenerConfig, reactor: Any, shared: Mapping[str, InheritedSocket] | None = None
    ) -> None:
        self.config = config
        #: raises ValueError for a malformed endpoint string
        self.endpoint: IStreamServerEndpoint = server_endpoint(reactor, config.endpoint, config.client_ca)
        if shared is not None:  # a worker: the socket its parent listens on
            if config.endpoint not in shared:
                raise ValueError(f"a worker cannot listen on {config.endpoint} (new since start): restart the relay")
            self.endpoint = worker_endpoint(reactor, config.endpoint, self.endpoint, shared[config.endpoint])
        self.files_state = _files_state(config.files)
        self.site: HandshakeDeadlineSite | None = None
        #: the RawSocket server factory of a ``transport = "rawsocket"`` listener
        self.factory: Any = None
        self.port: IListeningPort | None = None
        self.listening: Deferred | None = None
        #: plain endpoints' factories of every resource tree this listener served
        self.plain_factories: list[PlainWebSocketFactory] = []

    def serve_plain(self, factories: list[PlainWebSocketFactory]) -> None:
        """Remember the plain endpoints' factories of a new resource tree (and forget the
        earlier ones that have no connection left)."""
        self.plain_factories = [factory for factory in self.plain_factories if factory.clients] + factories

    @property
    def url(self) -> str | None:
        """The URL clients connect to, e.g. ``ws://127.0.0.1:8080/ws`` or
        ``rs://127.0.0.1:8081`` (None before listening)."""
        if self.port is None:
            return None
        address = self.port.getHost()
        if self.config.rawsocket:
            scheme = "rss" if self.config.secure else "rs"
            path = ""
        else:
            scheme = "wss" if self.config.secure else "ws"
            path = self.config.path
        if isinstance(address, IPv6Address):
            return f"{scheme}://[{address.host}]:{address.port}{path}"
        if isinstance(address, IPv4Address):
            return f"{scheme}://{address.host}:{address.port}{path}"
        if isinstance(address, UNIXAddress) and address.name is not None:
            # the form of Node's ws library: ws+unix:SOCKET:PATH
            name = address.name.decode() if isinstance(address.name, bytes) else address.name
            return f"{scheme}+unix:{name}" + (f":{path}" if path else "")
        return f"{scheme}://<{address}>{path}"

    def page_urls(self) -> dict[str, str]:
        """The status page, health check and metrics this listener serves: name -> URL
        (none for a UNIX socket, which a browser cannot open)."""
        if self.port is None:
            return {}
        address = self.port.getHost()
        if isinstance(address, IPv6Address):
            base = f"[{address.host}]:{address.port}"
        elif isinstance(address, IPv4Address):
            base = f"{address.host}:{address.port}"
        else:
            return {}
        scheme = "https" if self.config.secure else "http"
        paths = self.config.web_paths()
        return {name: f"{scheme}://{base}{paths[name]}" for name in ("status", "health", "metrics") if name in paths}


class RelayService(Service):
    """A :class:`RouterCore` listening on the listeners of a :class:`RelayConfig`, for as long
    as the service runs.

    After start, :attr:`router` is the router, :attr:`listeners` the listening endpoints,
    and :attr:`port` / :attr:`url` those of the first listener (once its endpoint has
    answered; for TCP, TLS and UNIX endpoints that is at once).

    ``own_process=True`` (what :func:`make_service` gives the relay commands) says the
    process is the relay's alone: at start it raises the process's open files limit to
    the hard limit (:func:`~promisifier.relay.open_files.raise_open_file_limit`), and
    once started, it tidies up after start-up for the whole process
    (:func:`~promisifier.relay.memory.release_startup_memory`).

    A worker of ``--workers N`` (:mod:`promisifier.relay.worker`) passes
    ``shared_sockets``: endpoint string -> the listening socket its parent handed it; its
    listeners adopt those instead of listening themselves. ``adjust_config`` changes every
    configuration read (at start and at reload) before it is used.
    """

    name = "promisifier-relay"

    def __init__(
        self,
        config: RelayConfig,
        *,
        config_file: str | None = None,
        reactor=None,
        stop_timeout: float = STOP_TIMEOUT,
        handle_sighup: bool = True,
        own_process: bool = False,
        shared_sockets: Mapping[str, InheritedSocket] | None = None,
        adjust_config: Callable[[RelayConfig], RelayConfig] | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        #: the file :meth:`reload` reads (None: nothing to reload)
        self.config_file = config_file
        self.stop_timeout = stop_timeout
        self.handle_sighup = handle_sighup and config_file is not None
        self.own_process = own_process
        self._reactor = reactor
        self.shared_sockets = shared_sockets
        self._adjust_config = adjust_config or (lambda config: config)
        config = self.config = self._adjust_config(config)
        self.router: RouterCore | None = None
        #: the status page, health check and metrics of the router (made at start)
        self.web: RelayWeb | None = None
        #: this relay as a node of a cluster (``[cluster]`` / ``--cluster``; made at start)
        self.cluster: ClusterNode | None = None
        self.listeners: list[Listener] = [Listener(listener, reactor, shared_sockets) for listener in config.listeners]
        self._reloading = DeferredLock()
        #: id of every listener auth configuration so far -> (it, its endpoint): what
        #: admitted a session, for revoke_on_reload
        self._admitting: dict[int, tuple[AuthConfig, str]] = {}
        self._sighup_installed = False
        self._previous_sighup: Any = None

    # -- facts --------------------------------------------------------------------------

    @property
    def port(self) -> IListeningPort | None:
        """The listening port of the first listener."""
        return self.listeners[0].port if self.listeners else None

    @property
    def url(self) -> str | None:
        """The URL of the first listener, e.g. ``ws://127.0.0.1:8080/ws``."""
        return self.listeners[0].url if self.listeners else None

    @property
    def urls(self) -> list[str]:
        return [listener.url for listener in self.listeners if listener.url is not None]

    # -- start and stop ------------------------------------------------------------------

    def startService(self) -> None:
        """Build the router and listen. If listening fails at once (port in use, no
        permission), the error is raised here, so twistd exits with it: in the relay's own
        process as ``SystemExit`` with one line saying why (exit code 1)."""
        super().startService()
        if self.own_process:
            # each connection is a file descriptor: allow as many as the system does
            raise_open_file_limit()
        self.router = RouterCore(self.config.router, reactor=self._reactor)
        self.web = RelayWeb.of(self.router)
        self.web.listener_urls = lambda: self.urls
        cluster = self.config.cluster
        if cluster is not None and cluster.private:
            log.info("promisifier relay: [cluster] names no redis and the relay runs one process: it runs alone")
        elif cluster is not None:
            self.cluster = start_cluster_node(self.router, cluster, self._reactor)
            self.web.cluster_status = self.cluster.status
        self._log_warnings(self.config)
        for listener in self.listeners:
            failure = self._bind(listener, starting=True)
            if failure is not None:
                for other in self.listeners:
                    if other.port is not None:
                        other.port.stopListening()
                        other.port = None
                self.running = 0
                self.router = None
                self.web = None
                if self.cluster is not None:
                    self.cluster.stop()
                    self.cluster = None
                if self.own_process:  # one line, not a traceback, and exit code 1
                    raise SystemExit(f"promisifier relay: {cannot_listen(failure.value)}")
                failure.raiseException()
        self.web.start()
        if self.handle_sighup:
            self._install_sighup()
        if self.own_process:
            release_startup_memory()

    def _bind(self, listener: Listener, starting: bool) -> Failure | None:
        """Listen; a failure the endpoint reports at once is returned (later ones are logged)."""
        if listener.config.rawsocket:
            # the RawSocket factory has its own handshake deadline
            listener.factory = listener_rawsocket_factory(self.router, listener.config)
            serving: Any = listener.factory
        else:
            root, factories = listener_root(
                self.router, listener.config, self.config.endpoints, self._reactor, self.web
            )
            _add_home_page(root, listener.config, self.web)
            # Connections must complete the WebSocket upgrade (or their HTTP request for a
            # page) within the handshake deadline.
            listener.site = deadline_site(root, listener_options(self.router, listener.config), self._reactor)
            listener.site.quiet_paths = _quiet_paths(listener.config)
            listener.serve_plain(factories)
            serving = listener.site
        failed_at_once: list[Failure] = []
        at_once = True

        def listened(port: IListeningPort) -> None:
            listener.listening = None
            listener.port = port
            log.info(
                "promisifier relay serving {url} (realms: {realms})",
                url=listener.url,
                realms=", ".join(realm.name for realm in self.config.router.realms),
            )
            pages = listener.page_urls()
            if pages:
                log.info("promisifier relay: {pages}", pages=", ".join(f"{name} {url}" for name, url in pages.items()))

        def failed(failure: Failure) -> None:
            listener.listening = None
            if failure.check(CancelledError):  # stopService before the endpoint answered
                return
            if at_once:
                failed_at_once.append(failure)
            else:
                self._listen_failed(listener, failure, starting)

        listener.listening = listener.endpoint.listen(serving)
        listener.listening.addCallbacks(listened, failed)
        at_once = False
        return failed_at_once[0] if failed_at_once else None

    def _listen_failed(self, listener: Listener, failure: Failure, starting: bool) -> None:
        # Only for endpoints that fail later than listen() itself.
        log.error("promisifier relay: {why}", why=cannot_listen(failure.value), endpoint=listener.config.endpoint)
        if starting and not any(other.port is not None for other in self.listeners) and self._reactor.running:
            self._reactor.stop()  # without a port the relay has no purpose

    def stopService(self) -> Deferred:
        """Stop listening, then close every session (at most :attr:`stop_timeout` seconds)."""
        super().stopService()
        self._restore_sighup()
        if self.web is not None:
            # /health answers 503 from now on (on connections still open), and the
            # history of the status page's charts stops.
            self.web.shutting_down = True
            self.web.stop()
        router, self.router = self.router, None
        stopped = gatherResults([self._unbind(listener) for listener in self.listeners])
        for listener in self.listeners:
            for factory in listener.plain_factories:
                factory.close_all(CloseCode.GOING_AWAY, "relay is shutting down")
            listener.plain_factories = []
        if router is not None:
            stopped.addCallback(lambda _: self._stop_router(router))
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            # after the sessions closed: the others see their subscriptions go first
            stopped.addCallback(lambda _: cluster.stop().addErrback(self._log_stop_error, "leave the cluster"))
        return stopped

    def _unbind(self, listener: Listener) -> Deferred:
        listening, listener.listening = listener.listening, None
        if listening is not None:
            listening.cancel()
        port, listener.port = listener.port, None
        stopped = maybeDeferred(port.stopListening) if port is not None else succeed(None)
        stopped.addErrback(self._log_stop_error, "stop listening")
        return stopped

    def _stop_router(self, router: RouterCore) -> Deferred:
        if self.own_process:
            self._hurry_on_second_signal(router)
        stopping = router.stop()
        stopping.addTimeout(self.stop_timeout, self._reactor)
        stopping.addCallbacks(self._stopped_cleanly, self._log_stop_error, errbackArgs=("close sessions",))
        return stopping

    def _hurry_on_second_signal(self, router: RouterCore) -> None:
        """While stopping, a second SIGTERM or Ctrl-C ends the grace period for calls in
        flight and the wait for GOODBYE answers at once."""

        def on_signal(signum: int, frame: Any) -> None:
            # a signal handler runs between two bytecodes: hand the work to the reactor
            self._reactor.callFromThread(self._hurry, router)

        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(number, on_signal)
            except ValueError:  # not the main thread: no signals here
                return

    def _hurry(self, router: RouterCore) -> None:
        log.warn("promisifier relay: second signal, stopping at once (calls in flight fail)")
        router.hurry()

    def _stopped_cleanly(self, _: object) -> None:
        log.info("promisifier relay stopped")
        # twistd re-sends the SIGTERM/SIGINT that stopped the reactor to itself once the
        # reactor is done, so the process would end "killed by SIGTERM" (-15) even after
        # this clean stop. A relay that closed every session has done its job: let twistd
        # exit 0. (The reactor records the signal in `_exitSignal`, which twistd reads after
        # run() returns; an unclean stop leaves it alone.)
        if getattr(self._reactor, "_exitSignal", None) in (signal.SIGTERM, signal.SIGINT):
            self._reactor._exitSignal = None

    def _log_stop_error(self, failure: Failure, step: str) -> None:
        log.failure("promisifier relay: could not {step} cleanly", failure, step=step)

    @staticmethod
    def _log_warnings(config: RelayConfig) -> None:
        for warning in config.warnings():
            log.warn("promisifier relay configuration: {warning}", warning=warning)

    # -- reload -------------------------------------------------------------------------------

    def reload(self) -> Deferred:
        """Read the config file again and apply it; fires with True when applied, False
        when the file was invalid (logged; the running configuration stays)."""
        return self._reloading.run(self._reload)

    def _reload(self) -> Deferred:
        if self.config_file is None or not self.running or self.router is None:
            log.warn("promisifier relay: nothing to reload (no config file, or not running)")
            return succeed(False)
        try:
            config = self._adjust_config(load_config(self.config_file))
        except ConfigError as error:
            log.error(
                "promisifier relay: configuration not reloaded, the running one stays; {file}: {errors}",
                file=self.config_file,
                errors="; ".join(error.errors),
            )
            return succeed(False)
        return self.apply(config)

    def apply(self, config: RelayConfig) -> Deferred:
        """Switch the running relay to ``config``; fires with True once every changed
        listener is re-bound (a listener that cannot listen is logged and left out), False
        when it could not be applied (logged)."""
        applying = maybeDeferred(self._apply, config)

        def failed(failure: Failure) -> bool:
            log.failure("promisifier relay: configuration from {file} not applied", failure, file=self.config_file)
            return False

        return applying.addErrback(failed)

    def _revoke(self, listeners: dict[str, Listener], config: RelayConfig) -> None:
        """Close the sessions that a listener with ``revoke_on_reload`` no longer admits.

        A session is checked against the listener configuration that admitted it, which
        may be older than the one before this reload: every listener's auth configuration
        is remembered with its endpoint."""
        assert self.router is not None
        for endpoint, listener in listeners.items():
            if listener.config.auth is not None:
                self._admitting[id(listener.config.auth)] = (listener.config.auth, endpoint)
        new_auth = {lc.endpoint: lc.auth for lc in config.listeners if lc.auth is not None and lc.auth.revoke_on_reload}
        if not new_auth:
            return
        for realm in self.router.realms.values():
            for session in list(realm.sessions.values()):
                admitted = self._admitting.get(id(session.authenticator.config))
                if admitted is None or admitted[1] not in new_auth:
                    continue
                if not still_admitted(session, admitted[0], new_auth[admitted[1]]):
                    log.info(
                        "session {session_id} ({authid!r}, {authmethod}) closed: its credentials were revoked by reload",
                        session_id=session.session_id,
                        authid=session.authid,
                        authmethod=session.authmethod,
                        event="revoked",
                    )
                    session.goodbye(ErrorURI.CLOSE_KILLED, "credentials revoked")

    def _apply(self, config: RelayConfig) -> Deferred:
        assert self.router is not None
        self._log_warnings(config)
        if config.cluster != self.config.cluster:
            log.warn("promisifier relay: the [cluster] settings changed; they take effect at the next start")
            config = dataclasses.replace(config, cluster=self.config.cluster)
        self.router.reload(config.router)
        self.config = config
        old = {listener.config.endpoint: listener for listener in self.listeners}
        self._revoke(old, config)
        kept: dict[int, Listener] = {}
        fresh: dict[int, Listener] = {}
        for index, listener_config in enumerate(config.listeners):
            listener = old.get(listener_config.endpoint)
            if (
                listener is not None
                and listener.port is not None
                and listener.files_state == _files_state(listener_config.files)
                and listener.config.transport == listener_config.transport
            ):
                del old[listener_config.endpoint]
                listener.config = listener_config
                if listener_config.rawsocket:
                    reconfigure_listener_rawsocket_factory(listener.factory, self.router, listener_config)
                else:
                    root, factories = listener_root(
                        self.router, listener_config, config.endpoints, self._reactor, self.web
                    )
                    _add_home_page(root, listener_config, self.web)
                    listener.site.resource = root  # type: ignore[union-attr]
                    listener.site.quiet_paths = _quiet_paths(listener_config)  # type: ignore[union-attr]
                    listener.serve_plain(factories)
                kept[index] = listener
            else:
                try:
                    fresh[index] = Listener(listener_config, self._reactor, self.shared_sockets)
                except Exception:  # noqa: BLE001 - e.g. a TLS file that changed since the check
                    log.failure("promisifier relay cannot use {endpoint}", endpoint=listener_config.endpoint)
        for listener in old.values():
            log.info("promisifier relay: no longer listening on {endpoint}", endpoint=listener.config.endpoint)
        stopped = gatherResults([self._unbind(listener) for listener in old.values()])

        def bind_fresh(_: object) -> bool:
            for listener in fresh.values():
                failure = self._bind(listener, starting=False)
                if failure is not None:
                    log.error(
                        "promisifier relay: {why}", why=cannot_listen(failure.value), endpoint=listener.config.endpoint
                    )
            bound = {
                **kept,
                **{i: lst for i, lst in fresh.items() if lst.port is not None or lst.listening is not None},
            }
            self.listeners = [bound[index] for index in sorted(bound)]
            log.info("promisifier relay: configuration reloaded from {file}", file=self.config_file)
            return True

        return stopped.addCallback(bind_fresh)

    # -- SIGHUP ---------------------------------------------------------------------------------

    def _install_sighup(self) -> None:
        if not hasattr(signal, "SIGHUP"):
            return
        try:
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        except ValueError:  # not the main thread: no signals here
            return
        self._sighup_installed = True

    def _restore_sighup(self) -> None:
        if not self._sighup_installed:
            return
        self._sighup_installed = False
        previous = self._previous_sighup if self._previous_sighup is not None else signal.SIG_DFL
        try:
            signal.signal(signal.SIGHUP, previous)
        except ValueError:
            pass

    def _on_sighup(self, signum: int, frame: Any) -> None:
        # A signal handler runs between two bytecodes of whatever the reactor was doing:
        # hand the work to the reactor.
        self._reactor.callFromThread(self._reload_on_signal)

    def _reload_on_signal(self) -> None:
        log.info("promisifier relay: SIGHUP, reading {file} again", file=self.config_file)
        self.reload()
