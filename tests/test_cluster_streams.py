"""Progressive call invocations and payload passthru across the nodes of a cluster: a
caller's stream of chunks reaches a callee on another node in order (results and
progressive results back), a callee there that does not take streams refuses it, a cancel
ends the callee's loop there; autobahn-python's end-to-end encrypted (cryptobox) calls and
events cross nodes opaque. Relays as separate processes on the test's own Redis."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from promisifier.client import ApplicationError, CallResult, Passthru, connect
from tests.support import connect_autobahn, leave_and_wait, until, within
from tests.test_advanced_profile_sockets import keyring_pair
from tests.test_client_streams import collect
from tests.test_cluster_rpc import registered_on

pytestmark = pytest.mark.slow


@pytest.fixture
def two_nodes(cluster):
    return cluster("n1"), cluster("n2")


@pytest.mark.process
@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest_twisted.inlineCallbacks
def test_a_stream_of_chunks_reaches_a_callee_on_another_node_in_order(two_nodes, serializer):
    n1, n2 = two_nodes
    callee = yield within(connect(n2.url, "realm1", serializers=[serializer]))
    yield within(callee.register("com.stream.collect", collect, stream_input=True))
    yield within(callee.register("com.stream.plain", lambda x: x))
    yield registered_on(n1, "com.stream.collect")
    yield registered_on(n1, "com.stream.plain")
    caller = yield within(connect(n1.url, "realm1", serializers=[serializer]))

    async def source():
        for n in range(5):
            await deferLater(reactor, 0.01, lambda: None)
            yield n
        yield CallResult(["two", "values"], {"k": b"\x00"})

    progress: list = []
    result = yield within(caller.call_stream("com.stream.collect", source(), on_progress=progress.append))
    assert result == [0, 1, 2, 3, 4, [["two", "values"], {"k": b"\x00"}]]
    assert progress == [1, 2, 3, 4, 5, 6]
    several = [caller.call_stream("com.stream.collect", [n, n + 1, n + 2]) for n in range(0, 30, 3)]
    assert (yield within(defer.gatherResults(several))) == [[n, n + 1, n + 2] for n in range(0, 30, 3)]
    assert (yield within(caller.call_stream("com.stream.collect", []))) == []
    # the callee on the other node decides: this one does not take its input as a stream
    with pytest.raises(ApplicationError) as info:
        yield within(caller.call_stream("com.stream.plain", [1, 2, 3]))
    assert info.value.error == "wamp.error.feature_not_supported"
    assert (yield within(caller.call("com.stream.plain", 1))) == 1
    yield within(caller.leave())
    yield within(callee.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_cancelling_a_stream_ends_the_callee_loop_on_the_other_node(two_nodes):
    n1, n2 = two_nodes
    callee = yield within(connect(n2.url, "realm1"))
    seen: list = []
    ended: defer.Deferred = defer.Deferred()

    async def slow(chunks):
        try:
            async for chunk in chunks:
                seen.append(chunk)
        finally:
            ended.callback(None)

    async def endless():
        n = 0
        while True:
            yield n
            n += 1
            await deferLater(reactor, 0.01, lambda: None)

    yield within(callee.register("com.stream.slow", slow, stream_input=True))
    yield registered_on(n1, "com.stream.slow")
    caller = yield within(connect(n1.url, "realm1"))
    d = caller.call_stream("com.stream.slow", endless())
    assert (yield until(lambda: len(seen) >= 3))
    d.cancel()
    with pytest.raises(defer.CancelledError):
        yield d
    yield within(ended)
    assert seen == list(range(len(seen)))
    yield within(caller.leave())
    yield within(callee.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_passthru_payloads_cross_nodes_opaque(two_nodes):
    n1, n2 = two_nodes
    originator, responder = keyring_pair()
    callee = yield connect_autobahn(n2.url, serializer="msgpack")
    callee.set_payload_codec(responder)
    yield within(callee.register(lambda a, b: {"sum": a + b}, "com.example.add"))
    received: defer.Deferred = defer.Deferred()
    yield within(callee.subscribe(lambda *a, **k: received.callback((a, k)), "com.example.news"))
    yield registered_on(n1, "com.example.add")
    caller = yield connect_autobahn(n1.url, serializer="json")
    caller.set_payload_codec(originator)
    assert (yield within(caller.call("com.example.add", 2, 3))) == {"sum": 5}
    yield within(caller.publish("com.example.news", "classified", options=PublishOptions(acknowledge=True)))
    assert (yield within(received)) == (("classified",), {})

    # our client's passthru payloads, both ways
    ours = yield within(connect(n2.url, "realm1"))
    yield within(ours.register("com.example.sealed", lambda sealed: Passthru(sealed.payload[::-1], scheme="x_custom")))
    yield registered_on(n1, "com.example.sealed")
    asking = yield within(connect(n1.url, "realm1"))
    answer = yield within(asking.call("com.example.sealed", Passthru(b"\x00opaque", scheme="x_custom", keyid="k1")))
    assert answer == Passthru(b"euqapo\x00", scheme="x_custom")
    for session in (asking, ours):
        yield within(session.leave())
    yield leave_and_wait(caller)
    yield leave_and_wait(callee)
