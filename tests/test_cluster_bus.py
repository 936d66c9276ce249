"""The Redis bus against a real redis-server: link, membership (heartbeats, TTL, reaping
exactly once), session id slots, topic channels and patterns (each publication once per
node), node messages, and what happens when Redis stops, comes back empty, or kills the
subscriber connection."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from promisifier.cluster.bus import SLOTS, LinkDown, session_id_in_slot
from promisifier.cluster.cluster_config import ClusterConfig
from promisifier.cluster.redis_bus import RedisBus, glob_escape, listen_target
from tests.support import until, within

pytestmark = pytest.mark.slow

#: short heartbeats keep the tests quick
INTERVAL = 0.2
TTL = 1.0


class Recorder:
    """A bus handler that writes down what it hears."""

    def __init__(self) -> None:
        self.links: list[bool] = []
        self.announces = 0
        self.joined: set[str] = set()
        self.lost: list[str] = []
        self.reaped: list[str] = []
        self.topic_messages: list[bytes] = []
        self.node_messages: list[bytes] = []

    def bus_link_changed(self, up: bool) -> None:
        self.links.append(up)

    def bus_announce(self) -> None:
        self.announces += 1

    def bus_nodes_changed(self, joined: frozenset[str], lost: frozenset[str]) -> None:
        self.joined |= joined
        self.lost += sorted(lost)

    def bus_reap(self, nodes: list[str]) -> None:
        self.reaped += nodes

    def bus_topic_message(self, payload: bytes) -> None:
        self.topic_messages.append(payload)

    def bus_node_message(self, payload: bytes) -> None:
        self.node_messages.append(payload)


@pytest.fixture
def buses(redis_server):
    """Start buses with ``buses(name)``: (bus, recorder), up; all stopped after the test."""
    from twisted.internet import reactor

    started: list[RedisBus] = []

    @defer.inlineCallbacks
    def start(node: str, url: str | None = None):
        config = ClusterConfig.from_url(url or redis_server.url, node=node, heartbeat_interval=INTERVAL, ttl=TTL)
        bus = RedisBus(config, reactor)
        recorder = Recorder()
        bus.start(recorder)
        started.append(bus)
        assert (yield until(lambda: bus.up and recorder.announces == 1)), "the bus did not come up"
        return bus, recorder

    yield start
    for bus in started:
        pytest_twisted.blockon(within(bus.stop()))


def test_listen_targets_escape_glob_characters_and_turn_empty_components_into_stars():
    assert listen_target("r", "a.b", "exact") == (False, "promisifier:t:r:a.b")
    assert listen_target("r", "a.b", "prefix") == (True, "promisifier:t:r:a.b*")
    assert listen_target("r", "a..c", "wildcard") == (True, "promisifier:t:r:a.*.c")
    assert listen_target("r[1]", "a*?", "prefix") == (True, "promisifier:t:r\\[1\\]:a\\*\\?*")
    assert glob_escape("a\\b") == "a\\\\b"


def test_session_ids_carry_their_slot():
    for slot in (0, 1, SLOTS - 1):
        for _ in range(100):
            session_id = session_id_in_slot(slot)
            assert 1 <= session_id <= 2**53 and session_id % SLOTS == slot


@pytest_twisted.inlineCallbacks
def test_nodes_see_each_other_with_different_slots(buses):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    assert (yield until(lambda: a.live_nodes == {"b"} and b.live_nodes == {"a"}))
    assert a.slot is not None and b.slot is not None and a.slot != b.slot
    assert ra.joined == {"b"} and rb.joined == {"a"}


@pytest_twisted.inlineCallbacks
def test_topics_reach_each_listening_node_once(buses):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    # b listens to the same publications three ways: it must get each one once
    yield within(b.listen("realm1", "com.x.y", "exact"))
    yield within(b.listen("realm1", "com.x", "prefix"))
    yield within(b.listen("realm1", "com..y", "wildcard"))
    yield within(a.listen("realm1", "com.other", "exact"))
    for n in range(5):
        assert a.publish_topic("realm1", "com.x.y", b"p%d" % n)
    assert a.publish_topic("realm1", "com.x.z", b"prefix only")
    assert a.publish_topic("realm2", "com.x.y", b"another realm")
    assert a.publish_topic("realm1", "org.x.y", b"nobody")
    assert (yield until(lambda: len(rb.topic_messages) >= 6))
    yield within(b.send("a", b"barrier")) and until(lambda: ra.node_messages == [b"barrier"])
    assert rb.topic_messages == [b"p0", b"p1", b"p2", b"p3", b"p4", b"prefix only"]
    assert ra.topic_messages == []
    # unlisten: nothing more arrives
    b.unlisten("realm1", "com.x", "prefix")
    b.unlisten("realm1", "com..y", "wildcard")
    b.unlisten("realm1", "com.x.y", "exact")
    yield within(b.listen("realm1", "com.marker", "exact"))
    a.publish_topic("realm1", "com.x.y", b"after")
    a.publish_topic("realm1", "com.marker", b"marker")
    assert (yield until(lambda: rb.topic_messages[-1:] == [b"marker"]))
    assert b"after" not in rb.topic_messages


@pytest_twisted.inlineCallbacks
def test_node_messages(buses):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    assert (yield within(a.send("b", b"hello")))
    assert (yield within(a.send("b", b"hello")))
    assert not (yield within(a.send("nobody", b"lost")))
    assert (yield until(lambda: rb.node_messages == [b"hello", b"hello"]))
    assert ra.node_messages == []


@pytest_twisted.inlineCallbacks
def test_a_node_that_leaves_is_lost_at_once_and_not_reaped(buses):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    assert (yield until(lambda: a.live_nodes == {"b"}))
    yield within(b.stop())
    assert (yield until(lambda: ra.lost == ["b"], seconds=3 * INTERVAL + 3))
    assert ra.reaped == []


@pytest_twisted.inlineCallbacks
def test_a_silent_node_is_lost_after_its_ttl_and_reaped_by_exactly_one_other(buses, redis_server):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    c, rc = yield buses("c")
    assert (yield until(lambda: a.live_nodes == {"b", "c"} and b.live_nodes == {"a", "c"}))
    # c stops beating without leaving: what a killed or frozen process looks like
    c._heartbeat.stop()
    c._stopping = True
    assert (yield until(lambda: ra.lost == ["c"] and rb.lost == ["c"], seconds=TTL + 4))
    assert (yield until(lambda: sorted(ra.reaped + rb.reaped) == ["c"], seconds=TTL + 4))
    assert b"c" not in redis_server.command("ZRANGE", "promisifier:nodes", "0", "-1")


@pytest_twisted.inlineCallbacks
def test_a_node_counted_as_gone_announces_itself_again(buses, redis_server):
    a, ra = yield buses("a")
    # as if the others had reaped it
    assert redis_server.command("ZREM", "promisifier:nodes", "a") == b":1\r\n"
    assert (yield until(lambda: ra.announces == 2, seconds=3 * INTERVAL + 3))


@pytest_twisted.inlineCallbacks
def test_redis_down_fails_fast_and_back_empty_everything_is_set_up_again(buses, redis_server):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    yield within(b.listen("realm1", "com.x", "prefix"))
    redis_server.stop()
    assert (yield until(lambda: not a.up and not b.up))
    assert not a.publish_topic("realm1", "com.x.y", b"dropped")
    assert a.dropped_publications == 1
    with pytest.raises(LinkDown):
        yield within(a.send("b", b"x"), seconds=0.5)
    redis_server.start()
    # back within the bounded reconnect delay; announced again to a server that lost everything
    assert (yield until(lambda: a.up and b.up and ra.announces == 2 and rb.announces == 2, seconds=5))
    assert (yield until(lambda: a.live_nodes == {"b"} and b.live_nodes == {"a"}, seconds=5))
    assert ra.lost == [] and rb.lost == [], "no node is counted lost for having been cut off"
    assert ra.links == [True, False, True]
    # b listens again without being asked
    assert a.publish_topic("realm1", "com.x.y", b"again")
    assert (yield until(lambda: rb.topic_messages == [b"again"]))


@pytest_twisted.inlineCallbacks
def test_a_killed_subscriber_connection_is_noticed_and_restored(buses, redis_server):
    a, ra = yield buses("a")
    b, rb = yield buses("b")
    yield within(b.listen("realm1", "com.x", "exact"))
    assert redis_server.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(b":")
    # both nodes' subscriber connections were killed
    assert (yield until(lambda: ra.links[-2:] == rb.links[-2:] == [False, True] and a.up and b.up, seconds=5))
    yield within(b.listen("realm1", "com.x", "exact"))
    assert a.publish_topic("realm1", "com.x", b"after the kill")
    assert (yield until(lambda: rb.topic_messages == [b"after the kill"]))


@pytest_twisted.inlineCallbacks
def test_a_password_protected_redis(tmp_path_factory):
    from tests.redis_support import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"), password="s3cret")
    server.start()
    from twisted.internet import reactor

    try:
        bus = RedisBus(ClusterConfig.from_url(server.url, node="p", heartbeat_interval=INTERVAL, ttl=TTL), reactor)
        recorder = Recorder()
        bus.start(recorder)
        assert (yield until(lambda: bus.up and recorder.announces == 1))
        yield within(bus.listen("realm1", "t", "exact"))
        bus.publish_topic("realm1", "t", b"\x00\xffbinary")
        assert (yield until(lambda: recorder.topic_messages == [b"\x00\xffbinary"]))
        yield within(bus.stop())
    finally:
        server.stop()


@pytest_twisted.inlineCallbacks
def test_a_subscriber_connection_that_silently_stops_delivering_is_replaced(buses):
    a, ra = yield buses("a")
    # the connection stays open but nothing it receives is read any more: the node's probes
    # through its own inbox stop arriving
    a._subscriber_conn.transport.pauseProducing()
    assert (yield until(lambda: ra.links == [True, False, True] and a.up, seconds=TTL + 3))
    assert (yield within(a.send("a", b"to myself")))
    assert (yield until(lambda: ra.node_messages == [b"to myself"]))


@pytest_twisted.inlineCallbacks
def test_a_frozen_redis_fails_calls_within_the_timeout_instead_of_hanging(buses, redis_server):
    import signal

    a, ra = yield buses("a")
    redis_server.popen.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(LinkDown):
            yield within(a.send("b", b"x"), seconds=a.command_timeout + 1)
        assert (yield until(lambda: False in ra.links, seconds=3))
    finally:
        redis_server.popen.send_signal(signal.SIGCONT)
    assert (yield until(lambda: a.up and ra.links[-1] is True, seconds=5))
