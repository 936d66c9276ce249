"""Keep-alive drops a peer that stopped reading; a slow subscriber cannot grow the relay."""

from __future__ import annotations

import gc
import os

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer, reactor

from promisifier.router import RouterConfig
from tests.support import connect_autobahn, leave_and_wait, start_router, within

pytestmark = pytest.mark.slow


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc")


def _stop_reading(session) -> None:
    """Make an autobahn session's socket stop reading (its kernel buffers then fill up)."""
    session._transport.transport.pauseProducing()


@pytest_twisted.inlineCallbacks
def test_keepalive_drops_a_peer_that_stopped_reading_and_fails_its_calls():
    # autobahn runs these timers with whole-second granularity: 1 s is the smallest that works
    interval, timeout = 1.0, 1.0
    running = yield start_router(RouterConfig(keepalive_interval=interval, keepalive_timeout=timeout))
    try:
        callee = yield connect_autobahn(running.url)
        caller = yield connect_autobahn(running.url, serializer="msgpack")
        invoked: defer.Deferred = defer.Deferred()

        def stuck():
            invoked.callback(None)
            return defer.Deferred()  # never answers

        yield callee.register(stuck, "com.example.stuck")
        call = caller.call("com.example.stuck")
        yield within(invoked)
        _stop_reading(callee)
        started = reactor.seconds()
        with pytest.raises(ApplicationError) as info:
            yield within(call, 5 * (interval + timeout))
        elapsed = reactor.seconds() - started
        assert info.value.error == "wamp.error.canceled"
        # autobahn's timers have whole-second granularity: allow a second on top
        assert elapsed < interval + timeout + 1.5, elapsed
        assert running.router.state_counts()["registrations"] == 0
        yield leave_and_wait(caller)
    finally:
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_slow_subscriber_gets_drops_while_the_others_get_every_event():
    event_size = 64 * 1024
    # 100 MiB: far beyond the 1 MiB cap; PROMISIFIER_FLOW_BYTES sets another amount
    total_bytes = int(os.environ.get("PROMISIFIER_FLOW_BYTES", 100 * 1024 * 1024))
    events = total_bytes // event_size
    cap = 1024 * 1024
    running = yield start_router(RouterConfig(max_outgoing_buffer=cap))
    try:
        topic = "com.example.flood"
        counts = [0] * 9
        # fires when every healthy subscriber has received at least `target` events
        waiting: list[tuple[int, defer.Deferred]] = []
        subscribers = []

        def on_event(payload, index):
            counts[index] += 1
            lowest = min(counts)
            while waiting and waiting[0][0] <= lowest:
                waiting.pop(0)[1].callback(None)

        def all_received(target: int) -> defer.Deferred:
            reached: defer.Deferred = defer.Deferred()
            if min(counts) >= target:
                reached.callback(None)
            else:
                waiting.append((target, reached))
            return reached

        for index in range(9):
            session = yield connect_autobahn(running.url, serializer="msgpack" if index % 2 else "json")
            yield session.subscribe(lambda payload, index=index: on_event(payload, index), topic)
            subscribers.append(session)
        slow = yield connect_autobahn(running.url, serializer="msgpack")
        yield slow.subscribe(lambda payload: None, topic)
        _stop_reading(slow)
        publisher = yield connect_autobahn(running.url, serializer="msgpack")

        gc.collect()
        rss_before = _rss_bytes()
        payload = os.urandom(event_size)
        # Publish in windows paced by the slowest healthy subscriber (all of them share this
        # process), so only the stalled one falls behind the relay's cap.
        window = 8
        for start in range(0, events, window):
            batch = [
                publisher.publish(topic, payload, options=PublishOptions(acknowledge=True))
                for _ in range(min(window, events - start))
            ]
            yield within(defer.gatherResults(batch), 30)
            yield within(all_received(start), 30)
        yield within(all_received(events), 30)
        gc.collect()
        rss_after = _rss_bytes()

        assert counts == [events] * 9
        slow_connection = next(
            s.peer for s in running.router.realms["realm1"].sessions.values() if s.session_id == slow._session_id
        )
        dropped = slow_connection.stats.dropped_events
        assert dropped > 0 and dropped <= events
        growth = rss_after - rss_before
        print(
            f"\nflow: {events} events of {event_size} B ({total_bytes / 2**20:.0f} MiB) to 9 subscribers; "
            f"slow subscriber: {dropped} dropped, {slow_connection.outgoing_buffered} B queued; "
            f"RSS growth {growth / 2**20:.1f} MiB"
        )
        # Without the cap the relay would hold the whole flood for the slow subscriber.
        assert growth < 64 * 1024 * 1024, growth
        assert slow_connection.outgoing_buffered < cap + 2 * event_size
        for session in subscribers + [publisher]:
            yield leave_and_wait(session)
    finally:
        yield running.stop()
