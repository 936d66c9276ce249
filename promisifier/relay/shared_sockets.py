"""Listening sockets shared by the workers of one relay (``--workers N``).

The parent process listens on every listener's endpoint string itself, with Twisted's own
endpoints (so ``tcp:``, ``tcp6:``, ``ssl:`` and ``unix:`` mean, and fail, exactly what they
mean for a lone relay), but never accepts: it stops reading at once and hands the socket to
each worker as an inherited file descriptor. Each worker adopts it
(as ``reactor.adoptStreamPort`` does): one accept queue, served by whichever worker is
free, one connection at a time. A TLS
listener shares its TCP socket, and each worker runs TLS itself with the context its own
endpoint string gives (what Twisted's ``listenSSL`` does over a TCP port).

Why not ``SO_REUSEPORT`` (each worker binding the port itself): it does not exist for UNIX
sockets, a port 0 would give each worker another port, the kernel hashes each connection to
one worker's own queue (connections queued at a worker that dies are lost, a busy worker
gets its share all the same), and any process of the same user could bind the port too.
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, tcp, unix
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from promisifier.relay import endpoints as ep


@dataclass(frozen=True)
class InheritedSocket:
    """A listening socket a worker got from its parent: its descriptor and address family."""

    fd: int
    family: int


def family_of(port: IListeningPort) -> int:
    """The address family of a listening port."""
    address = port.getHost()
    if isinstance(address, IPv6Address):
        return socket.AF_INET6
    if isinstance(address, IPv4Address):
        return socket.AF_INET
    if isinstance(address, UNIXAddress):
        return socket.AF_UNIX
    raise ValueError(f"cannot share a listening socket at {address}")


def listen_unread(endpoint: IStreamServerEndpoint) -> IListeningPort:
    """Listen on ``endpoint`` without accepting anything (the workers accept): the port,
    or the endpoint's error raised (``CannotListenError``: port in use, ...)."""
    found: list[Any] = []
    never_used = Factory.forProtocol(Protocol)
    never_used.noisy = False
    endpoint.listen(never_used).addBoth(found.append)
    if not found:
        raise ValueError("the endpoint did not listen at once (only tcp:, tcp6:, ssl: and unix: can be shared)")
    if isinstance(found[0], Failure):
        found[0].raiseException()
    port: IListeningPort = found[0]
    port.stopReading()  # type: ignore[attr-defined]
    return port


class _OneAtATime:
    """A shared port accepts one connection each time its socket is ready: every idle
    worker is woken, and each takes one, so connections arriving together spread over the
    workers (Twisted's ports take up to a hundred at once, growing the batch under load: one
    worker would take a whole burst), and a busy worker, woken later, takes fewer."""

    @property
    def numberAccepts(self) -> int:  # noqa: N802 - Twisted's attribute
        return 1

    @numberAccepts.setter
    def numberAccepts(self, value: int) -> None:  # noqa: N802
        pass


class _SharedTCPPort(_OneAtATime, tcp.Port):
    """A TCP port on an adopted socket (Twisted's spares an adopted socket when it stops)."""


class _SharedUnixPort(_OneAtATime, unix.Port):
    """A UNIX port on an adopted socket that leaves the socket alone when it stops: the
    parent owns the file, and the other workers still serve it. (Twisted's own shuts the
    socket down, which stops it for every process, and removes the file; its TCP port
    already spares a socket it adopted.)"""

    _shouldShutdown = False

    def connectionLost(self, reason: Failure) -> None:  # noqa: N802 - Twisted's API
        # unix.Port.connectionLost would unlink the path; skip to the TCP port's cleanup
        super(unix.Port, self).connectionLost(reason)


def tls_context(endpoint: IStreamServerEndpoint) -> Any:
    """The TLS context factory of an ``ssl:`` server endpoint (Twisted's or
    :func:`~promisifier.relay.tls_listener.server_endpoint`'s)."""
    context = getattr(endpoint, "_sslContextFactory", None)
    if context is None:
        raise ValueError(f"cannot take the TLS settings of {endpoint!r} (Twisted changed?)")
    return context


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """The server endpoint of a worker's listener: each :meth:`listen` adopts the inherited
    socket anew (the descriptor is duplicated, so the listener can stop and listen again,
    e.g. with a renewed certificate), wrapped in TLS when ``tls_context`` is given."""

    def __init__(self, reactor: Any, inherited: InheritedSocket, tls_context: Any = None) -> None:
        self.reactor = reactor
        self.inherited = inherited
        self.tls_context = tls_context

    def listen(self, factory: Any) -> defer.Deferred[IListeningPort]:
        if self.tls_context is not None:
            factory = TLSMemoryBIOFactory(self.tls_context, False, factory)
        try:
            if self.inherited.family == socket.AF_UNIX:
                port = _SharedUnixPort._fromListeningDescriptor(self.reactor, self.inherited.fd, factory)
                # startListening sets the file's mode: keep the one the parent's endpoint gave
                port.mode = stat.S_IMODE(os.stat(port._bindPath).st_mode)
                port.startListening()
            else:
                port = _SharedTCPPort._fromListeningDescriptor(
                    self.reactor, self.inherited.fd, self.inherited.family, factory
                )
                port.startListening()
        except Exception:  # noqa: BLE001 - handed to the caller as listen() failures are
            return defer.fail()
        return defer.succeed(port)


def worker_endpoint(reactor: Any, endpoint_string: str, own: IStreamServerEndpoint, inherited: InheritedSocket) -> Any:
    """The endpoint a worker's listener uses: the inherited socket, with the TLS settings
    of ``own`` (the endpoint its string gives) for an ``ssl:`` listener."""
    context = tls_context(own) if ep.is_secure(endpoint_string) else None
    return AdoptedEndpoint(reactor, inherited, context)
