"""The ``[cluster]`` table and ``--cluster``: parsing, defaults, errors naming the key, and
that a relay without them has no cluster at all. Also the Redis fixture the cluster tests
stand on."""

from __future__ import annotations

import os
import socket
import textwrap
import tomllib

import pytest
from twisted.python import usage

from promisifier.cluster.cluster_config import ClusterConfig, RedisAddress
from promisifier.cluster.redis_bus import RedisBus
from promisifier.relay.command_line import RelayOptions, check_config
from promisifier.relay.relay_config import ConfigError, parse_config
from promisifier.relay.service import make_service

pytestmark = pytest.mark.slow


def parse(text: str):
    return parse_config(tomllib.loads(textwrap.dedent(text)))


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value.errors


def test_a_relay_without_cluster_settings_has_none():
    assert parse("").cluster is None
    options = RelayOptions()
    options.parseOptions([])
    assert make_service(options).config.cluster is None


def test_the_cluster_table_with_every_key():
    config = parse(
        """
        [cluster]
        redis = "redis://:in-url@10.1.2.3:7000/3"
        password = "s3cret"
        node = "relay-a"
        heartbeat_interval = 0.5
        ttl = 2
        """
    ).cluster
    assert config == ClusterConfig(RedisAddress("10.1.2.3", 7000, 3, "s3cret"), "relay-a", 0.5, 2.0)
    assert "s3cret" not in repr(config)


def test_a_cluster_table_without_redis_sets_the_heartbeat_of_the_workers_private_cluster():
    config = parse("[cluster]\nheartbeat_interval = 2\nttl = 10").cluster
    assert config.redis is None and config.private
    assert (config.heartbeat_interval, config.ttl) == (2.0, 10.0)
    assert not parse('[cluster]\nredis = "redis://localhost"').cluster.private
    with pytest.raises(ValueError, match="needs the address of its Redis"):
        RedisBus(config)


def test_defaults_node_host_and_pid_heartbeat_and_ttl():
    config = parse('[cluster]\nredis = "redis://localhost"').cluster
    assert config.redis == RedisAddress("localhost", 6379, 0, None)
    assert config.node == f"{socket.gethostname()}:{os.getpid()}"
    assert (config.heartbeat_interval, config.ttl) == (1.0, 4.0)
    assert RedisAddress.parse("redis://:p%40ss@[::1]:6380/1") == RedisAddress("::1", 6380, 1, "p@ss")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[cluster]\npassword = "x"', "cluster.password: a password needs a redis URL beside it"),
        (
            '[cluster]\nredis = "http://127.0.0.1"',
            "cluster.redis: expected a redis:// or unix:// URL, got 'http://127.0.0.1'",
        ),
        ('[cluster]\nredis = "redis://127.0.0.1:99999"', "cluster.redis: the port is not a number"),
        ('[cluster]\nredis = "redis://127.0.0.1/zero"', "cluster.redis: the path must be a database number"),
        ('[cluster]\nredis = "redis:///0"', "cluster.redis: the URL names no host"),
        ('[cluster]\nredis = "redis://h"\nnode = ""', "cluster.node: expected a non-empty string, got ''"),
        ('[cluster]\nredis = "redis://h"\nttl = 0', "cluster.ttl: expected a number of seconds > 0, got 0"),
        (
            '[cluster]\nredis = "redis://h"\nheartbeat_interval = 2\nttl = 1',
            "cluster.ttl: must be longer than heartbeat_interval (2.0), got 1.0",
        ),
        ('[cluster]\nredis = "redis://h"\nnodes = 3', "cluster.nodes: unknown key"),
        ("cluster = 5", "cluster: expected a table, got 5 (an integer)"),
    ],
)
def test_errors_name_the_key(text, expected):
    errors = errors_of(text)
    assert any(expected in error for error in errors), errors


def test_check_config_reports_cluster_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\nredis = "redis://h"\nttl = -1\n')
    good = tmp_path / "good.toml"
    good.write_text('[cluster]\nredis = "redis://127.0.0.1:6379/0"\nnode = "a"\n')
    assert check_config(str(bad)) == 1
    assert "cluster.ttl: expected a number of seconds > 0, got -1" in capsys.readouterr().err
    assert check_config(str(good)) == 0
    assert capsys.readouterr().out == "ok\n"


def test_the_cluster_option():
    options = RelayOptions()
    options.parseOptions(["--cluster", "redis://127.0.0.1:6400/1"])
    assert make_service(options).config.cluster.redis == RedisAddress("127.0.0.1", 6400, 1)
    with pytest.raises(usage.UsageError, match="--cluster 'redis://h:x': the port is not a number"):
        RelayOptions().parseOptions(["--cluster", "redis://h:x"])


def test_the_cluster_option_cannot_be_combined_with_a_file(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text("")
    with pytest.raises(usage.UsageError, match="--cluster cannot be combined with --config"):
        RelayOptions().parseOptions(["--config", str(path), "--cluster", "redis://h"])


def test_the_redis_fixture_runs_its_own_server_and_restarts_it_empty(redis_server):
    assert redis_server.command("SET", "k", "v") == b"+OK\r\n"
    assert redis_server.command("CONFIG", "GET", "save").endswith(b"$4\r\nsave\r\n$0\r\n\r\n")
    redis_server.stop()
    with pytest.raises(OSError):
        redis_server.command("PING")
    redis_server.start()
    assert redis_server.command("DBSIZE") == b":0\r\n"


def test_a_lone_relay_with_a_cluster_table_without_redis_runs_alone(relays):
    from tests.relay_support import relay_config

    relay = relays(relay_config("[cluster]\nttl = 10\n"))
    assert relay.service.config.cluster.private
    assert relay.service.cluster is None
