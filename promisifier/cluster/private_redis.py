"""A ``redis-server`` of one relay's own, for its workers to meet on.

``--workers N`` joins the workers of a relay as a cluster; when no ``[cluster]`` Redis is
configured, the relay starts :class:`PrivateRedis`: ``redis-server`` on a UNIX socket in a
temporary directory only this user can enter, with no TCP port and nothing written to disk
(``--save "" --appendonly no``), and stops it (and removes the directory) when the relay
stops. Its log goes to the relay's log at debug level; the last lines are in the error when
it does not start.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import tempfile
from typing import Any

from twisted.internet import defer, error
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.cluster.cluster_config import RedisAddress

log = Logger(namespace="promisifier.cluster")

#: the program started
REDIS_SERVER = "redis-server"
#: seconds redis-server gets to accept connections, and to exit once asked
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
#: the socket's name in the temporary directory
SOCKET_NAME = "redis.sock"
#: what redis-server logs once it accepts connections (6.x, 7.0 and 7.2 word it differently)
_READY = "ready to accept connections"


class RedisNotInstalled(Exception):
    """There is no ``redis-server`` to start."""


def find_redis_server(executable: str = REDIS_SERVER) -> str:
    """The path of ``redis-server`` on ``$PATH``; raises :class:`RedisNotInstalled` saying
    what to do about it."""
    found = shutil.which(executable)
    if found is None:
        raise RedisNotInstalled(
            f"{executable} is not installed (on Debian or Ubuntu: apt-get install redis-server); "
            'or name a Redis the workers share: [cluster] redis = "redis://host:6379/0" in the config file'
        )
    return found


class _RedisProcess(ProcessProtocol):
    """Reads the server's log lines: says when it is ready, keeps the last few."""

    def __init__(self) -> None:
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.lines: collections.deque[str] = collections.deque(maxlen=20)
        self._partial = b""

    def outReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's API
        *lines, self._partial = (self._partial + data).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            log.debug("redis-server: {line}", line=line)
            if _READY in line.lower() and not self.ready.called:
                self.ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:  # noqa: N802
        if not self.ready.called:
            self.ready.errback(reason)
        self.ended.callback(None)


class PrivateRedis:
    """``redis-server`` on a UNIX socket in a temporary directory (see the module docstring).

    :meth:`start` fires with the server's :class:`RedisAddress` once it accepts connections;
    :meth:`stop` stops it and removes the directory. Should the server exit on its own,
    ``on_exit`` is called with the reason; :meth:`start` brings it back on the same socket.
    """

    def __init__(self, reactor: Any = None, executable: str = REDIS_SERVER, on_exit: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.executable = executable
        self.on_exit = on_exit
        self.directory: str | None = None
        self._process: Any = None
        self._protocol: _RedisProcess | None = None
        self._stopping = False

    @property
    def socket_path(self) -> str | None:
        return None if self.directory is None else os.path.join(self.directory, SOCKET_NAME)

    @property
    def address(self) -> RedisAddress:
        assert self.socket_path is not None, "not started"
        return RedisAddress.unix(self.socket_path)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> defer.Deferred[RedisAddress]:
        """Start the server (on the socket of the last start, if any); fires with its
        address, or fails (:class:`RedisNotInstalled`, or ``RuntimeError`` with its last
        log lines) after at most :data:`START_TIMEOUT` seconds."""
        try:
            program = find_redis_server(self.executable)
        except RedisNotInstalled as missing:
            return defer.fail(missing)
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="promisifier-redis-")
        self._stopping = False
        protocol = self._protocol = _RedisProcess()
        argv = [program, "--port", "0", "--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        argv += ["--dir", self.directory, "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._process = self.reactor.spawnProcess(
            protocol, program, argv, env=os.environ, childFDs={0: "w", 1: "r", 2: "r"}
        )
        protocol.ended.addCallback(self._ended, protocol)
        ready = protocol.ready
        ready.addTimeout(START_TIMEOUT, self.reactor)

        def started(_: object) -> RedisAddress:
            log.info("cluster: private redis-server (pid {pid}) on {path}", pid=self.pid, path=self.socket_path)
            return self.address

        def failed(failure: Failure) -> defer.Deferred:
            why = "did not answer in time" if failure.check(defer.TimeoutError) else "exited"
            output = "\n".join(protocol.lines) or "(no output)"
            stopped = self.stop()
            stopped.addCallback(lambda _: Failure(RuntimeError(f"{program} {why}: {output}")))
            return stopped

        return ready.addCallbacks(started, failed)

    def _ended(self, _: object, protocol: _RedisProcess) -> None:
        if protocol is not self._protocol:
            return
        self._process = None
        if not self._stopping and protocol.ready.called and self.on_exit is not None:
            self.on_exit("\n".join(list(protocol.lines)[-3:]))

    def stop(self) -> defer.Deferred[None]:
        """Stop the server (SIGTERM; SIGKILL after :data:`STOP_TIMEOUT` s) and remove its
        directory."""
        self._stopping = True
        protocol, process = self._protocol, self._process
        if process is None or protocol is None:
            self._remove_directory()
            return defer.succeed(None)
        self._signal(process, signal.SIGTERM)
        killer = self.reactor.callLater(STOP_TIMEOUT, self._signal, process, signal.SIGKILL)

        def ended(_: object) -> None:
            if killer.active():
                killer.cancel()
            self._remove_directory()

        ended_now: defer.Deferred[None] = defer.Deferred()
        protocol.ended.addCallback(lambda _: ended_now.callback(None))
        return ended_now.addCallback(ended)

    @staticmethod
    def _signal(process: Any, number: int) -> None:
        try:
            process.signalProcess(number)
        except error.ProcessExitedAlready:
            pass

    def _remove_directory(self) -> None:
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
