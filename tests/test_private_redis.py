"""A relay's own redis-server (``--workers`` without a ``[cluster]`` Redis) and Redis on a
UNIX socket: the server starts on a socket in a private directory, buses meet on it through
a ``unix://`` URL, and stopping it leaves no process, socket or directory behind; without
``redis-server`` on ``$PATH`` the error says what to do."""

from __future__ import annotations

import dataclasses
import os
import re
import stat

import pytest
import pytest_twisted

from promisifier.cluster.cluster_config import ClusterConfig, RedisAddress
from promisifier.cluster.private_redis import PrivateRedis, RedisNotInstalled, find_redis_server
from promisifier.cluster.redis_bus import RedisBus
from tests.support import until, within
from tests.test_cluster_bus import Recorder

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("unix:///run/redis.sock", RedisAddress.unix("/run/redis.sock")),
        ("redis+unix:///tmp/r%20s.sock?db=3", RedisAddress.unix("/tmp/r s.sock", 3)),
        ("unix:///run/redis.sock?db=1&password=s%40cret", RedisAddress.unix("/run/redis.sock", 1, "s@cret")),
    ],
)
def test_unix_socket_urls(url, expected):
    address = RedisAddress.parse(url)
    assert address == expected
    assert RedisAddress.parse(str(address)) == dataclasses.replace(address, password=None)
    assert "cret" not in repr(address) + str(address)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("unix://run/redis.sock", "names a socket file, e.g. unix:///run/redis.sock (three slashes)"),
        ("unix:///run/redis.sock?db=x", "db must be a database number"),
        ("unix:///run/redis.sock?timeout=1", "unknown query parameter(s) timeout"),
        ("http://127.0.0.1", "expected a redis:// or unix:// URL"),
    ],
)
def test_bad_unix_socket_urls_say_why(url, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        RedisAddress.parse(url)


@pytest_twisted.inlineCallbacks
def test_a_private_redis_serves_buses_on_its_socket_and_leaves_nothing_behind():
    from twisted.internet import reactor

    private = PrivateRedis(reactor)
    address = yield within(private.start())
    directory, pid = private.directory, private.pid
    assert address.socket == os.path.join(directory, "redis.sock")
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(address.socket).st_mode)
    buses = []
    try:
        for node in ("a", "b"):
            config = ClusterConfig.from_url(str(address), node=node, heartbeat_interval=0.2, ttl=1.0)
            bus = RedisBus(config, reactor)
            recorder = Recorder()
            bus.start(recorder)
            buses.append((bus, recorder))
        assert (yield until(lambda: all(bus.up for bus, _ in buses))), "the buses did not come up on the socket"
        (a, _), (b, from_a) = buses
        assert (yield until(lambda: "b" in a.live_nodes))
        assert (yield within(a.send("b", b"hello over a UNIX socket")))
        assert (yield until(lambda: from_a.node_messages == [b"hello over a UNIX socket"]))
    finally:
        for bus, _ in buses:
            yield within(bus.stop())
        yield within(private.stop())
    assert not _alive(pid)
    assert not os.path.exists(directory)


@pytest_twisted.inlineCallbacks
def test_a_private_redis_that_exits_is_reported_and_comes_back_on_the_same_socket():
    from twisted.internet import reactor

    exits: list[str] = []
    private = PrivateRedis(reactor, on_exit=exits.append)
    address = yield within(private.start())
    try:
        os.kill(private.pid, 9)
        assert (yield until(lambda: len(exits) == 1)), "the exit was not reported"
        assert not private.running
        again = yield within(private.start())
        assert again == address
        assert os.path.exists(address.socket)
    finally:
        yield within(private.stop())
    assert len(exits) == 1  # stopping on purpose is not reported


def test_without_redis_server_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisNotInstalled, match=r"redis-server is not installed \(on Debian or Ubuntu: apt-get"):
        find_redis_server()


@pytest_twisted.inlineCallbacks
def test_starting_without_redis_server_fails_with_that_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    private = PrivateRedis()
    with pytest.raises(RedisNotInstalled):
        yield within(private.start())
    assert private.directory is None


@pytest_twisted.inlineCallbacks
def test_a_server_that_cannot_start_fails_with_its_own_words(tmp_path):
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'Fatal: no such option --unixsocketperm' >&2\nexit 1\n")
    fake.chmod(0o755)
    private = PrivateRedis(executable=str(fake))
    with pytest.raises(RuntimeError, match="exited: Fatal: no such option --unixsocketperm"):
        yield within(private.start())
    assert private.directory is None
