"""The relay service run by ``twistd promisifier-relay`` and ``python -m promisifier relay``.

Starting it builds a :class:`~promisifier.router.Router` and listens on the endpoint with the
router's web site; stopping it stops listening, then closes every session with
``router.stop()`` (GOODBYE ``wamp.close.system_shutdown``), so SIGTERM ends the process cleanly.
"""

from __future__ import annotations

import signal

from twisted.application.service import IService, Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.relay.options import RelayOptions
from promisifier.router import Router, RouterConfig

log = Logger(namespace="promisifier.relay")

#: seconds ``stopService`` waits for the router to close its sessions before giving up
STOP_TIMEOUT = 10.0

#: endpoint types whose clients connect with wss://
_TLS_ENDPOINT_TYPES = {"ssl"}


def make_service(options: RelayOptions, reactor=None) -> IService:
    """The relay service for parsed :class:`RelayOptions` (not started yet).

    A malformed endpoint string raises ``ValueError`` here, before anything runs.
    """
    if reactor is None:
        from twisted.internet import reactor
    description = options["endpoint"]
    endpoint = serverFromString(reactor, description)
    secure = description.split(":", 1)[0].strip().lower() in _TLS_ENDPOINT_TYPES
    return RelayService(
        options.router_config(), endpoint, path=options["path"], secure=secure, reactor=reactor
    )


class RelayService(Service):
    """A :class:`Router` listening on one endpoint, for as long as the service runs.

    After start, :attr:`router` is the router and :attr:`port` the listening port (once the
    endpoint has answered; for TCP, TLS and UNIX endpoints that is at once).
    """

    name = "promisifier-relay"

    def __init__(
        self,
        config: RouterConfig,
        endpoint: IStreamServerEndpoint,
        path: str = "/ws",
        secure: bool = False,
        reactor=None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.endpoint = endpoint
        self.path = path
        self.secure = secure
        self.stop_timeout = stop_timeout
        self._reactor = reactor
        self.router: Router | None = None
        self.port: IListeningPort | None = None
        self._listening: Deferred | None = None

    def startService(self) -> None:
        """Build the router and listen. If listening fails at once (port in use, no
        permission), the error is raised here, so twistd exits with it."""
        super().startService()
        self.router = Router(self.config, reactor=self._reactor)
        self._listening = self.endpoint.listen(self.router.site(self.path))
        failed_at_once: list[Failure] = []
        starting = True

        def failed(failure: Failure) -> None:
            if failure.check(CancelledError):  # stopService before the endpoint answered
                return
            if starting:
                failed_at_once.append(failure)
            else:
                self._listen_failed(failure)

        self._listening.addCallbacks(self._listened, failed)
        starting = False
        if failed_at_once:
            self.running = 0
            self.router = self._listening = None
            failed_at_once[0].raiseException()

    def _listened(self, port: IListeningPort) -> None:
        self._listening = None
        self.port = port
        log.info(
            "promisifier relay serving {url} (realms: {realms})",
            url=self.url,
            realms=", ".join(realm.name for realm in self.config.realms),
        )

    def _listen_failed(self, failure: Failure) -> None:
        # Only for endpoints that fail later than listen() itself: without a port the relay
        # has no purpose, so the process ends.
        self._listening = None
        log.failure("promisifier relay cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        if self._reactor.running:
            self._reactor.stop()

    @property
    def url(self) -> str | None:
        """The URL clients connect to, e.g. ``ws://127.0.0.1:8080/ws`` (None before listening)."""
        if self.port is None:
            return None
        address = self.port.getHost()
        scheme = "wss" if self.secure else "ws"
        if isinstance(address, IPv6Address):
            return f"{scheme}://[{address.host}]:{address.port}{self.path}"
        if isinstance(address, IPv4Address):
            return f"{scheme}://{address.host}:{address.port}{self.path}"
        return f"{scheme}://<{address}>{self.path}"

    def stopService(self) -> Deferred:
        """Stop listening, then close every session (at most :attr:`stop_timeout` seconds)."""
        super().stopService()
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.cancel()
        port, self.port = self.port, None
        router, self.router = self.router, None
        stopped = maybeDeferred(port.stopListening) if port is not None else succeed(None)
        stopped.addErrback(self._log_stop_error, "stop listening")
        if router is not None:
            stopped.addCallback(lambda _: self._stop_router(router))
        return stopped

    def _stop_router(self, router: Router) -> Deferred:
        stopping = router.stop()
        stopping.addTimeout(self.stop_timeout, self._reactor)
        stopping.addCallbacks(self._stopped_cleanly, self._log_stop_error, errbackArgs=("close sessions",))
        return stopping

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
