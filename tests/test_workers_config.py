"""``--workers N`` and ``workers = N``: parsing, ``auto``, errors, which one wins, and which
service the relay commands build (a lone relay for 1, the parent of the workers above)."""

from __future__ import annotations

import os
import tomllib

import pytest
from twisted.python import usage

from promisifier.relay.command_line import RelayOptions
from promisifier.relay.relay_config import ConfigError, parse_config
from promisifier.relay.service import RelayService, make_service
from promisifier.relay.worker_count import MAX_WORKERS, parse_workers
from promisifier.relay.workers import WorkerSpec, WorkersService


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (4, 4), ("3", 3), ("auto", max(1, os.cpu_count() or 1))])
def test_worker_counts(value, expected):
    assert parse_workers(value) == expected


@pytest.mark.parametrize("value", [0, -1, MAX_WORKERS + 1, "two", 2.5, True, ""])
def test_bad_worker_counts_say_what_is_expected(value):
    with pytest.raises(ValueError, match=f'expected a number of processes from 1 to {MAX_WORKERS}, or "auto"'):
        parse_workers(value)


def test_the_config_file_key():
    assert parse_config(tomllib.loads("")).workers == 1
    assert parse_config(tomllib.loads("workers = 3")).workers == 3
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads('workers = "many"'))
    assert info.value.errors == [
        f"workers: expected a number of processes from 1 to {MAX_WORKERS}, or \"auto\" (one per CPU), got 'many'"
    ]


def options(*argv: str) -> RelayOptions:
    parsed = RelayOptions()
    parsed.parseOptions(list(argv))
    return parsed


def test_the_option_wins_over_the_file(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text("workers = 3\n")
    assert options("--config", str(config)).workers == 3
    assert options("--config", str(config), "--workers", "2").workers == 2
    assert options().workers == 1
    with pytest.raises(usage.UsageError, match="--workers: expected a number of processes"):
        options("--workers", "0")


def test_one_worker_is_a_lone_relay_and_more_are_the_parent_of_workers():
    assert isinstance(make_service(options()), RelayService)
    assert isinstance(make_service(options("--workers", "1")), RelayService)
    parent = make_service(options("--workers", "2", "--realm", "a", "--rawsocket", "tcp:9000:interface=127.0.0.1"))
    assert isinstance(parent, WorkersService) and parent.count == 2
    assert parent.options["realms"] == ["a"] and parent.options["rawsockets"] == ["tcp:9000:interface=127.0.0.1"]


def test_a_worker_spec_goes_through_json():
    spec = WorkerSpec(
        index=1,
        workers=2,
        config_file=None,
        options={"endpoint": "tcp:0", "realms": ["realm1"]},
        redis="unix:///tmp/x/redis.sock?db=0",
        password="secret",
        node="host:1/w1",
        heartbeat_interval=1.0,
        ttl=4.0,
        sockets=[("tcp:0", 4, 2)],
        group="host:1/",
        private_redis=True,
    )
    assert WorkerSpec.from_json(spec.to_json()) == spec
    cluster = spec.cluster_config()
    assert cluster.redis.socket == "/tmp/x/redis.sock" and cluster.redis.password == "secret"
    assert cluster.node == "host:1/w1"
