"""``--workers N``: one relay on every core, as N processes joined as a cluster.

The process started by ``python -m promisifier relay --workers N`` (or ``twistd
promisifier-relay --workers N``) is the parent: it serves no client itself. It

1. listens on every listener's endpoint and hands the sockets to the workers
   (:mod:`promisifier.relay.shared_sockets`: one accept queue per listener, whichever
   worker is free takes the next connection; every listener kind works, UNIX sockets too);
2. picks the Redis the workers meet on: the ``[cluster]`` one when configured (the workers
   are then nodes of that cluster beside any other relay on it), else its own
   :class:`~promisifier.cluster.private_redis.PrivateRedis` on a UNIX socket (a
   ``[cluster]`` table without ``redis`` only sets the heartbeat of this private cluster:
   ``heartbeat_interval`` and ``ttl``, e.g. longer on a machine the relay saturates);
3. starts N workers (``python -m promisifier.relay.worker``), each a complete relay
   (:class:`~promisifier.relay.service.RelayService`) with the same configuration, a
   cluster node named ``<node>/w<i>`` (``<node>``: the ``[cluster]`` node name, default
   host:pid of the parent; ``.<n>`` added for the n-th restart), and reports once all serve.

Signals: SIGTERM or SIGINT stops every worker the way a lone relay stops (calls in flight
get the grace period, sessions get GOODBYE); a second one makes them hurry; the private
Redis goes last, and the sockets are closed (a UNIX socket's file removed). SIGHUP is
forwarded: each worker reads the config file again (listeners whose endpoint changed, or
new ones, need a restart: the sockets are the parent's).

A worker that exits while the relay runs (a crash, a kill) is logged with how it ended and
replaced by a new one after :data:`RESTART_DELAY` seconds, doubled each time one dies
within :data:`STABLE_AFTER` seconds of its start, up to :data:`MAX_RESTART_DELAY`: its
clients reconnect to the others meanwhile, and the cluster counts its node lost (calls in
flight to its callees fail, as for any node). A worker that exits before it ever served
(a configuration it cannot use) stops the whole relay with exit code 1. A private Redis
that exits is started again on the same socket (the workers reconnect and announce
themselves again).

Each worker learns its part from one line of JSON on its standard input (:class:`WorkerSpec`),
which then stays open: when the parent is gone, the workers stop too. A worker writes
``ready`` to descriptor 3 once it serves and its link to Redis is up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.cluster.cluster_config import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_TTL,
    ClusterConfig,
    RedisAddress,
    default_node_name,
)
from promisifier.cluster.private_redis import PrivateRedis, RedisNotInstalled, find_redis_server
from promisifier.relay.endpoints import cannot_listen
from promisifier.relay.relay_config import RelayConfig
from promisifier.relay.shared_sockets import family_of, listen_unread

log = Logger(namespace="promisifier.relay")

#: seconds before a worker that died is replaced, doubled while they keep dying young
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
#: a worker that lived this long (seconds) died of something else than its start
STABLE_AFTER = 30.0
#: seconds past the shutdown grace and the workers' own stop timeout before SIGKILL
KILL_AFTER = 5.0
#: descriptor of the worker's "ready" pipe, and of its first inherited socket
READY_FD = 3
FIRST_SOCKET_FD = 4


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to know, sent as JSON on its standard input."""

    index: int
    workers: int
    #: the config file (absolute), or None: ``options`` build the configuration
    config_file: str | None
    #: keyword arguments of :func:`~promisifier.relay.relay_config.default_config` (no file)
    options: dict[str, Any]
    #: the Redis the workers meet on (with its password) and the cluster settings
    redis: str
    password: str | None
    node: str
    heartbeat_interval: float
    ttl: float
    #: (endpoint string, descriptor in the worker, address family) of each shared socket
    sockets: list[tuple[str, int, int]]
    log_format: str = "text"
    log_level: str = "info"
    #: the node names of every worker of this relay begin with this
    group: str = ""
    #: the Redis is the parent's own (worker 0 stops it if the parent dies)
    private_redis: bool = False

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode() + b"\n"

    @classmethod
    def from_json(cls, line: bytes) -> WorkerSpec:
        fields = json.loads(line)
        fields["sockets"] = [tuple(entry) for entry in fields["sockets"]]
        return cls(**fields)

    def cluster_config(self) -> ClusterConfig:
        redis = dataclasses.replace(RedisAddress.parse(self.redis), password=self.password)
        return ClusterConfig(redis, self.node, self.heartbeat_interval, self.ttl)


class _Worker(ProcessProtocol):
    """One worker process as the parent sees it."""

    def __init__(self, supervisor: WorkersService, index: int, generation: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.generation = generation
        self.ready = False
        #: the process id (kept after it ended, for the log)
        self.pid: int | None = None
        self.started_at = supervisor.reactor.seconds()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def childDataReceived(self, fd: int, data: bytes) -> None:  # noqa: N802 - Twisted's API
        if fd == READY_FD and b"ready" in data and not self.ready:
            self.ready = True
            self.supervisor._worker_ready(self)

    def processEnded(self, reason: Failure) -> None:  # noqa: N802
        self.supervisor._worker_ended(self, reason)
        self.ended.callback(None)

    def signal(self, number: int) -> None:
        try:
            self.transport.signalProcess(number)  # type: ignore[union-attr]
        except (error.ProcessExitedAlready, AttributeError):
            pass


def _how_it_ended(reason: Failure) -> str:
    value = reason.value
    signal_number = getattr(value, "signal", None)
    if signal_number is not None:
        try:
            return f"was killed by {signal.Signals(signal_number).name}"
        except ValueError:
            return f"was killed by signal {signal_number}"
    return f"exited with code {getattr(value, 'exitCode', None)}"


class WorkersService(Service):
    """The parent of ``--workers N`` (see the module docstring)."""

    name = "promisifier-relay"

    def __init__(
        self,
        config: RelayConfig,
        workers: int,
        *,
        config_file: str | None = None,
        options: dict[str, Any] | None = None,
        log_format: str = "text",
        log_level: str = "info",
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.count = workers
        self.config_file = os.path.abspath(config_file) if config_file is not None else None
        self.options = options or {}
        self.log_format = log_format
        self.log_level = log_level
        self.reactor = reactor
        cluster = config.cluster
        #: the node names of the workers begin with this
        self.group = cluster.node if cluster is not None else default_node_name()
        self.private_redis: PrivateRedis | None = None
        self.redis_url: str | None = None
        #: the listeners (relay.service.Listener), each with its port that never accepts
        self.listeners: list[Any] = []
        self.workers: dict[int, _Worker] = {}
        self.exit_code = 0
        self._generations: dict[int, int] = {}
        self._restarts: dict[int, Any] = {}
        self._delays: dict[int, float] = {}
        self._stopping = False
        self._all_ready_logged = False
        self._previous_sighup: Any = None

    # -- start ------------------------------------------------------------------------------

    def startService(self) -> None:
        """Listen, start the Redis (unless one is configured), then the workers. What is
        wrong at once (no redis-server, a port in use) raises ``SystemExit`` with one line."""
        from promisifier.relay.open_files import raise_open_file_limit
        from promisifier.relay.service import Listener

        super().startService()
        raise_open_file_limit()
        if self._private:
            try:
                find_redis_server()
            except RedisNotInstalled as missing:
                self.running = 0
                raise SystemExit(
                    f"promisifier relay: --workers {self.count} joins the workers on a Redis of their own, but {missing}"
                ) from None
        for listener_config in self.config.listeners:
            listener = Listener(listener_config, self.reactor)
            try:
                listener.port = listen_unread(listener.endpoint)
            except Exception as failure:  # noqa: BLE001 - CannotListenError and what endpoints raise
                self._close_sockets()
                self.running = 0
                raise SystemExit(f"promisifier relay: {cannot_listen(failure)}") from None
            self.listeners.append(listener)
        self._install_sighup()
        if self.config.cluster is not None and self.config.cluster.redis is not None:
            self.redis_url = str(self.config.cluster.redis)
            self._start_workers()
            return
        self.private_redis = PrivateRedis(self.reactor, on_exit=self._redis_exited)
        self.private_redis.start().addCallbacks(self._redis_started, self._fatal, errbackArgs=("the private Redis",))

    def _redis_started(self, address: Any) -> None:
        self.redis_url = str(address)
        if self.running and not self._stopping:
            self._start_workers()

    def _start_workers(self) -> None:
        log.info(
            "promisifier relay: starting {count} workers (cluster on {redis})", count=self.count, redis=self.redis_url
        )
        for index in range(self.count):
            self._spawn(index)

    @property
    def _private(self) -> bool:
        """The workers meet on a Redis of their own: the config names none."""
        return self.config.cluster is None or self.config.cluster.private

    def spec(self, index: int) -> WorkerSpec:
        """What worker ``index`` is told."""
        cluster = self.config.cluster
        generation = self._generations.get(index, 0)
        node = f"{self.group}/w{index}" + (f".{generation}" if generation else "")
        sockets = [
            (listener.config.endpoint, FIRST_SOCKET_FD + n, family_of(listener.port))
            for n, listener in enumerate(self.listeners)
        ]
        assert self.redis_url is not None
        return WorkerSpec(
            index=index,
            workers=self.count,
            config_file=self.config_file,
            options=self.options,
            redis=self.redis_url,
            password=cluster.redis.password if cluster is not None and cluster.redis is not None else None,
            node=node,
            heartbeat_interval=cluster.heartbeat_interval if cluster is not None else DEFAULT_HEARTBEAT_INTERVAL,
            ttl=cluster.ttl if cluster is not None else DEFAULT_TTL,
            sockets=sockets,
            log_format=self.log_format,
            log_level=self.log_level,
            group=self.group + "/",
            private_redis=self.private_redis is not None,
        )

    def _spawn(self, index: int) -> None:
        self._restarts.pop(index, None)
        generation = self._generations.get(index, 0)
        worker = _Worker(self, index, generation)
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: 2, READY_FD: "r"}
        for n, listener in enumerate(self.listeners):
            child_fds[FIRST_SOCKET_FD + n] = listener.port.fileno()
        argv = [sys.executable, "-m", "promisifier.relay.worker"]
        worker.pid = self.reactor.spawnProcess(worker, sys.executable, argv, env=os.environ, childFDs=child_fds).pid
        worker.transport.writeToChild(0, self.spec(index).to_json())  # type: ignore[union-attr]
        self.workers[index] = worker

    def _worker_ready(self, worker: _Worker) -> None:
        again = " again" if self._all_ready_logged else ""
        log.info(
            "promisifier relay: worker {index} (pid {pid}) serving{again}",
            index=worker.index,
            pid=worker.pid,
            again=again,
        )
        if (
            not self._all_ready_logged
            and all(w.ready for w in self.workers.values())
            and len(self.workers) == self.count
        ):
            self._all_ready_logged = True
            urls = ", ".join(filter(None, (listener.url for listener in self.listeners)))
            log.info("promisifier relay: {count} workers serving {urls}", count=self.count, urls=urls)

    # -- workers that end -----------------------------------------------------------------------

    def _worker_ended(self, worker: _Worker, reason: Failure) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        if self._stopping:
            return
        how = _how_it_ended(reason)
        if not worker.ready:
            self._fatal(Failure(RuntimeError(f"worker {worker.index} {how} before it served")), "a worker")
            return
        lived = self.reactor.seconds() - worker.started_at
        if lived >= STABLE_AFTER:
            delay = RESTART_DELAY
        else:
            delay = min(self._delays.get(worker.index, RESTART_DELAY / 2) * 2, MAX_RESTART_DELAY)
        self._delays[worker.index] = delay
        self._generations[worker.index] = worker.generation + 1
        log.error(
            "promisifier relay: worker {index} (pid {pid}) {how}; a new one starts in {delay} s",
            index=worker.index,
            pid=worker.pid,
            how=how,
            delay=delay,
        )
        self._restarts[worker.index] = self.reactor.callLater(delay, self._spawn, worker.index)

    def _redis_exited(self, last_words: str) -> None:
        if self._stopping or self.private_redis is None:
            return
        log.error("promisifier relay: the private redis-server exited ({why}); starting it again", why=last_words)
        self.private_redis.start().addErrback(self._fatal, "the private Redis")

    def _fatal(self, failure: Failure, what: str) -> None:
        """Something the relay cannot do without failed: stop everything, exit code 1."""
        if self._stopping:
            return
        log.error("promisifier relay: {what} failed: {why}; stopping", what=what, why=failure.getErrorMessage())
        self.exit_code = 1
        self.reactor.addSystemEventTrigger("after", "shutdown", _exit_now, 1)
        if self.reactor.running:
            self.reactor.stop()

    # -- stop -------------------------------------------------------------------------------------

    def stopService(self) -> defer.Deferred[None]:
        """Stop every worker (SIGTERM, then SIGKILL for one still there after the grace
        and stop timeouts), then the private Redis, then close the sockets."""
        from promisifier.relay.service import STOP_TIMEOUT

        super().stopService()
        self._stopping = True
        self._restore_sighup()
        for call in self._restarts.values():
            if call.active():
                call.cancel()
        self._restarts.clear()
        workers = list(self.workers.values())
        if workers:
            log.info("promisifier relay: stopping {count} workers", count=len(workers))
        self._forward_on_second_signal()
        for worker in workers:
            worker.signal(signal.SIGTERM)
        patience = self.config.router.shutdown_grace + STOP_TIMEOUT + KILL_AFTER
        killer = self.reactor.callLater(patience, self._kill, workers)
        stopped = defer.gatherResults([worker.ended for worker in workers])

        def workers_gone(_: object) -> defer.Deferred[None] | None:
            if killer.active():
                killer.cancel()
            redis, self.private_redis = self.private_redis, None
            return redis.stop() if redis is not None else None

        def done(_: object) -> None:
            log.info("promisifier relay stopped")
            # as RelayService does: a clean stop after SIGTERM/SIGINT exits 0
            if self.exit_code == 0 and getattr(self.reactor, "_exitSignal", None) in (signal.SIGTERM, signal.SIGINT):
                self.reactor._exitSignal = None

        stopped.addCallback(workers_gone).addCallback(lambda _: self._close_sockets())
        return stopped.addCallback(done)

    def _kill(self, workers: list[_Worker]) -> None:
        for worker in workers:
            if not worker.ended.called:
                log.warn(
                    "promisifier relay: worker {index} (pid {pid}) did not stop; killing it",
                    index=worker.index,
                    pid=worker.pid,
                )
                worker.signal(signal.SIGKILL)

    def _close_sockets(self) -> defer.Deferred[Any]:
        """Stop listening (a UNIX socket's file is removed)."""
        closing = []
        for listener in self.listeners:
            if listener.port is not None:
                closing.append(defer.maybeDeferred(listener.port.stopListening))
                listener.port = None
        return defer.gatherResults(closing)

    def _forward_on_second_signal(self) -> None:
        """While stopping, SIGTERM or SIGINT again tells the workers to stop at once."""

        def on_signal(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self._forward, signal.SIGTERM)

        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(number, on_signal)
            except ValueError:  # not the main thread
                return

    def _forward(self, number: int) -> None:
        for worker in list(self.workers.values()):
            worker.signal(number)

    # -- SIGHUP -----------------------------------------------------------------------------------

    def _install_sighup(self) -> None:
        try:
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        except ValueError:  # not the main thread
            self._previous_sighup = None

    def _restore_sighup(self) -> None:
        if self._previous_sighup is not None:
            try:
                signal.signal(signal.SIGHUP, self._previous_sighup)
            except ValueError:
                pass
            self._previous_sighup = None

    def _on_sighup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self._reload)

    def _reload(self) -> None:
        log.info("promisifier relay: SIGHUP, the workers read {file} again", file=self.config_file or "(no file)")
        self._forward(signal.SIGHUP)


def _exit_now(code: int) -> None:
    """End the process with ``code`` once the reactor has shut down (twistd and
    ``task.react`` would exit 0 after a stop they did not ask for)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
