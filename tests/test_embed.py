"""Embedding: the router in the test's own process, with in-process sessions."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError as AutobahnApplicationError
from twisted.internet import defer

from promisifier.client import ApplicationError
from promisifier.embed import Router
from promisifier.router import RouterConfig
from tests.support import connect_autobahn, leave_and_wait, within

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded():
    router = Router(RouterConfig())
    port = pytest_twisted.blockon(router.listen("tcp:0:interface=127.0.0.1"))
    yield router, f"ws://127.0.0.1:{port.getHost().port}/ws"
    pytest_twisted.blockon(router.stop())
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest_twisted.inlineCallbacks
def test_remote_client_calls_in_process_procedure_and_back(embedded, serializer):
    router, url = embedded
    local = yield within(router.session("realm1"))
    yield within(local.register("com.embedded.add", lambda a, b: a + b))
    remote = yield connect_autobahn(url, serializer=serializer)
    assert (yield within(remote.call("com.embedded.add", 2, 3))) == 5

    # and the other way round: an in-process caller, a remote callee
    yield remote.register(lambda text: text.upper(), "com.remote.upper")
    assert (yield within(local.call("com.remote.upper", "abc"))) == "ABC"

    # events both ways
    received = defer.Deferred()
    yield within(local.subscribe("com.embedded.topic", lambda *args: received.callback(args)))
    remote.publish("com.embedded.topic", 1, b"\x00\x01")
    assert (yield within(received)) == (1, b"\x00\x01")

    def fail():
        raise ApplicationError("com.embedded.failed", "no", code=7)

    yield within(local.register("com.embedded.fail", fail))
    with pytest.raises(AutobahnApplicationError) as info:
        yield within(remote.call("com.embedded.fail"))
    assert info.value.error == "com.embedded.failed" and info.value.kwargs == {"code": 7}

    yield leave_and_wait(remote)
    yield within(local.leave())
    yield within(local.closed)
    assert router.state_counts()["sessions"] == 0
