"""Progressive call invocations with our client on both sides: ``call_stream`` (caller) and
``register(..., stream_input=True)`` (callee), over real sockets with each serializer and
in process."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from promisifier.client import ApplicationError, CallResult, InvocationChunks, connect
from promisifier.embed import Router
from promisifier.router import RouterConfig
from tests.support import until, within

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded():
    router = Router(RouterConfig())
    port = pytest_twisted.blockon(router.listen("tcp:0:interface=127.0.0.1"))
    yield router, f"ws://127.0.0.1:{port.getHost().port}/ws"
    pytest_twisted.blockon(router.stop())
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


async def collect(chunks: InvocationChunks, progress=None):
    received = []
    async for chunk in chunks:
        received.append([chunk.args, chunk.kwargs] if isinstance(chunk, CallResult) else chunk)
        if progress is not None:
            progress(len(received))
    return received


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.inlineCallbacks
def test_a_stream_of_chunks_reaches_the_callee_in_order(embedded, serializer):
    router, url = embedded
    callee = yield within(connect(url, "realm1", serializers=[serializer]))
    caller = yield within(connect(url, "realm1", serializers=[serializer]))
    yield within(callee.register("com.example.collect", collect, stream_input=True))

    async def source():
        for n in range(5):
            await deferLater(reactor, 0.01, lambda: None)
            yield n
        yield CallResult(["two", "values"], {"k": b"\x00"})

    progress = []
    result = yield within(caller.call_stream("com.example.collect", source(), on_progress=progress.append))
    assert result == [0, 1, 2, 3, 4, [["two", "values"], {"k": b"\x00"}]]
    assert progress == [1, 2, 3, 4, 5, 6]
    assert (yield within(caller.call_stream("com.example.collect", ["a", "b"]))) == ["a", "b"]
    assert (yield within(caller.call_stream("com.example.collect", []))) == []
    assert (yield within(caller.call("com.example.collect", "plain"))) == ["plain"]
    yield within(caller.leave())
    yield within(callee.leave())


@pytest_twisted.inlineCallbacks
def test_a_callee_without_stream_input_refuses_a_stream(embedded):
    router, _url = embedded
    callee = yield within(router.session("realm1"))
    caller = yield within(router.session("realm1"))
    yield within(callee.register("com.example.plain", lambda x: x))
    with pytest.raises(ApplicationError) as error:
        yield within(caller.call_stream("com.example.plain", [1, 2, 3]))
    assert error.value.error == "wamp.error.feature_not_supported"
    assert (yield within(caller.call("com.example.plain", 1))) == 1


@pytest_twisted.inlineCallbacks
def test_cancelling_a_streaming_call_ends_the_callee_loop(embedded):
    router, _url = embedded
    callee = yield within(router.session("realm1"))
    caller = yield within(router.session("realm1"))
    seen = []
    ended = defer.Deferred()

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

    yield within(callee.register("com.example.slow", slow, stream_input=True))
    d = caller.call_stream("com.example.slow", endless())
    yield until(lambda: len(seen) >= 3)
    d.cancel()
    with pytest.raises(defer.CancelledError):
        yield d
    yield within(ended)
    count = len(seen)
    yield deferLater(reactor, 0.05, lambda: None)
    assert len(seen) == count
    assert router.state_counts()["pending_calls"] == 0


@pytest_twisted.inlineCallbacks
def test_a_failing_source_fails_the_call_with_its_error(embedded):
    router, _url = embedded
    callee = yield within(router.session("realm1"))
    caller = yield within(router.session("realm1"))
    yield within(callee.register("com.example.collect", collect, stream_input=True))

    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        yield within(caller.call_stream("com.example.collect", broken()))
    yield until(lambda: router.state_counts()["pending_calls"] == 0)
