"""One worker of ``--workers N``: ``python -m promisifier.relay.worker``, started by the
relay's parent process (:mod:`promisifier.relay.workers`), never by hand.

It reads its :class:`~promisifier.relay.workers.WorkerSpec` from the first line of its
standard input, then runs a :class:`~promisifier.relay.service.RelayService` with the
relay's configuration, listening on the sockets it inherited, as a node of the workers'
cluster. It tells its parent ``ready`` on descriptor 3 once it serves and its link to Redis
is up (or after twice the cluster's time-to-live without it: it serves its own clients all
the same). It stops cleanly on SIGTERM (a second one hurries, as for a lone relay) or when
its standard input ends (the parent is gone); SIGINT, which a terminal sends the whole
process group on Ctrl-C, is left to the parent. Log lines carry ``worker`` (its index).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from typing import Any

from twisted.internet import abstract, fdesc
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, Logger
from zope.interface import provider

from promisifier.relay.workers import READY_FD, WorkerSpec

log = Logger(namespace="promisifier.relay")

#: seconds between two looks at the cluster link while waiting to say ready
_READY_POLL = 0.05


class _ParentWatch(abstract.FileDescriptor):
    """Reads standard input, where nothing more comes: its end means the parent is gone."""

    def __init__(self, reactor: Any, on_gone: Any) -> None:
        super().__init__(reactor)
        self.on_gone = on_gone
        fdesc.setNonBlocking(0)
        self.startReading()

    def fileno(self) -> int:
        return 0

    def doRead(self) -> Any:  # noqa: N802 - Twisted's API
        return fdesc.readFromFD(0, lambda data: None)

    def connectionLost(self, reason: Any) -> None:  # noqa: N802
        super().connectionLost(reason)
        self.on_gone()


def _observer(spec: WorkerSpec) -> ILogObserver:
    from promisifier.relay.logging import make_observer

    inner = make_observer(spec.log_format, spec.log_level, sys.stdout)

    @provider(ILogObserver)
    def observe(event: dict) -> None:
        event = dict(event, worker=spec.index)
        if spec.log_format == "text":
            level = event.get("log_level")
            event["log_system"] = f"{event.get('log_namespace')}#{getattr(level, 'name', level)} w{spec.index}"
        inner(event)

    return observe


def _config(spec: WorkerSpec) -> Any:
    from promisifier.relay.relay_config import default_config, load_config

    if spec.config_file is not None:
        return load_config(spec.config_file)
    options = dict(spec.options)
    for key in ("realms", "rawsockets"):
        if key in options:
            options[key] = tuple(options[key])
    return default_config(**options)


def _say_ready(service: Any, spec: WorkerSpec, reactor: Any) -> None:
    """Write ``ready`` to the parent once the cluster link is up (bounded wait)."""
    deadline = reactor.seconds() + 2 * spec.ttl

    def check() -> None:
        cluster = service.cluster
        linked = cluster is not None and cluster.bus.up and cluster.bus.slot is not None
        if not linked and reactor.seconds() < deadline:
            return
        if not linked:
            log.warn("promisifier relay worker {index}: serving without a link to Redis yet", index=spec.index)
        poll.stop()
        try:
            os.write(READY_FD, b"ready\n")
            os.close(READY_FD)
        except OSError:
            pass

    poll = LoopingCall(check)
    poll.clock = reactor
    poll.start(_READY_POLL, now=True)


def _stop_private_redis(path: str | None) -> None:
    """Shut the parent's private Redis down (the parent died without doing it) and remove
    its directory."""
    import shutil
    import socket

    if path is None:
        return
    try:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(2.0)
            connection.connect(path)
            connection.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            connection.recv(64)  # the server closes the connection as it exits
    except OSError:
        pass
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def run(spec: WorkerSpec) -> int:
    """Serve until stopped; the exit code."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from promisifier.relay.service import RelayService
    from promisifier.relay.shared_sockets import InheritedSocket
    from promisifier.relay.worker_status import WorkerFigures

    globalLogBeginner.beginLoggingTo([_observer(spec)], redirectStandardIO=False)
    cluster = spec.cluster_config()
    shared = {endpoint: InheritedSocket(fd, family) for endpoint, fd, family in spec.sockets}
    try:
        service = RelayService(
            _config(spec),
            config_file=spec.config_file,
            reactor=reactor,
            own_process=True,
            shared_sockets=shared,
            adjust_config=lambda config: dataclasses.replace(config, cluster=cluster, workers=1),
        )
        service.startService()
    except (Exception, SystemExit) as failure:  # noqa: BLE001 - told to the parent by the exit code
        log.error("promisifier relay worker {index} could not start: {why}", index=spec.index, why=failure)
        return 1
    figures = WorkerFigures(service.web, service.cluster, spec.group, spec.workers, reactor)
    service.web.workers = figures  # type: ignore[union-attr]
    figures.start()
    reactor.addSystemEventTrigger("before", "shutdown", figures.stop)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)

    def parent_gone() -> None:
        if reactor.running:
            log.warn("promisifier relay worker {index}: the parent process is gone; stopping", index=spec.index)
            if spec.private_redis and spec.index == 0 and cluster.redis is not None:  # nobody else will stop it
                reactor.addSystemEventTrigger("after", "shutdown", _stop_private_redis, cluster.redis.socket)
            reactor.stop()

    _ParentWatch(reactor, parent_gone)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides, and tells
    # the workers with SIGTERM (the reactor installs its own SIGINT handler at run()).
    reactor.callWhenRunning(signal.signal, signal.SIGINT, signal.SIG_IGN)
    reactor.callWhenRunning(_say_ready, service, spec, reactor)
    reactor.run()
    return 0


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line:
        print("promisifier.relay.worker: started by the relay's --workers, not by hand", file=sys.stderr)
        return 2
    return run(WorkerSpec.from_json(line))


if __name__ == "__main__":
    sys.exit(main())
