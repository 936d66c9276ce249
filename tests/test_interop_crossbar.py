"""Our client against a WAMP router nobody here wrote: Crossbar.io.

Crossbar 26.10.1 runs as a separate process (``crossbar start``) on 127.0.0.1, with realm
``realm1`` open to anonymous clients, a WebSocket transport (json and msgpack) and a
RawSocket transport. It lives in its own virtualenv, ``tests/interop/crossbar/venv``
(``bash tests/interop/crossbar/install.sh``; CI runs it), or wherever the environment
variable ``PROMISIFIER_CROSSBAR`` points (the ``crossbar`` executable). Without it these
tests are skipped with that reason.

Each scenario runs over WebSocket with json and with msgpack and over RawSocket.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

import promisifier
from promisifier.client import ApplicationError, CallResult, CallTimeout, Client
from tests.crossbar_support import needs_crossbar, running_crossbar
from tests.support import free_ports, within

pytestmark = [pytest.mark.slow, pytest.mark.process, needs_crossbar]


def _node_config(ws_port: int, rs_port: int) -> dict:
    everything = {"call": True, "register": True, "publish": True, "subscribe": True}
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "realms": [
                    {
                        "name": "realm1",
                        "roles": [
                            {
                                "name": "anonymous",
                                "permissions": [
                                    {
                                        "uri": "",
                                        "match": "prefix",
                                        "allow": everything,
                                        "disclose": {"caller": True, "publisher": True},
                                        "cache": True,
                                    }
                                ],
                            }
                        ],
                    }
                ],
                "transports": [
                    {
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": ws_port, "interface": "127.0.0.1"},
                        "serializers": ["json", "msgpack"],
                    },
                    {
                        "type": "rawsocket",
                        "endpoint": {"type": "tcp", "port": rs_port, "interface": "127.0.0.1"},
                        "serializers": ["json", "msgpack"],
                    },
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def crossbar(tmp_path_factory):
    """A running Crossbar node; yields ``{"ws": url, "rs": url}``."""
    ws_port, rs_port = free_ports(2)
    with running_crossbar(tmp_path_factory.mktemp("crossbar"), _node_config(ws_port, rs_port), (ws_port, rs_port)):
        yield {"ws": f"ws://127.0.0.1:{ws_port}/ws", "rs": f"rs://127.0.0.1:{rs_port}"}


LANES = {
    "ws-json": ("ws", ("json",)),
    "ws-msgpack": ("ws", ("msgpack",)),
    "rs-msgpack": ("rs", ("msgpack",)),
}


@pytest.fixture(params=sorted(LANES))
def lane(request, crossbar):
    """(url, serializers) of one transport + serializer."""
    transport, serializers = LANES[request.param]
    return crossbar[transport], serializers


@defer.inlineCallbacks
def _two_sessions(lane):
    url, serializers = lane
    first = yield within(promisifier.connect(url, "realm1", serializers=serializers))
    second = yield within(promisifier.connect(url, "realm1", serializers=serializers))
    return first, second


@defer.inlineCallbacks
def _leave(*sessions):
    for session in sessions:
        reason = yield within(session.leave())
        # The specification's answer is goodbye_and_out; Crossbar 26.10.1 answers with
        # the reason it was sent (wamp.close.normal).
        assert reason in ("wamp.close.goodbye_and_out", "wamp.close.normal")
        assert not session.connected


@pytest_twisted.inlineCallbacks
def test_join_and_what_crossbar_announces(lane):
    url, serializers = lane
    session = yield within(promisifier.connect(url, "realm1", serializers=serializers))
    assert session.session_id > 0
    assert session.subprotocol == f"wamp.2.{serializers[0]}"
    for role, feature in [
        ("dealer", "progressive_call_results"),
        ("dealer", "call_canceling"),
        ("dealer", "caller_identification"),
        ("broker", "publisher_exclusion"),
        ("broker", "pattern_based_subscription"),
    ]:
        assert session.router_supports(role, feature), (role, feature)
    yield _leave(session)


@pytest_twisted.inlineCallbacks
def test_register_call_results_and_errors(lane):
    callee, caller = yield _two_sessions(lane)

    def add(a, b, *, scale=1):
        return (a + b) * scale

    def split(text):
        return CallResult(text.split(), {"count": len(text.split())})

    def refuse(reason):
        raise ApplicationError("com.test.refused", reason, detail=7)

    yield within(callee.register("com.test.add", add))
    yield within(callee.register("com.test.split", split))
    yield within(callee.register("com.test.refuse", refuse))
    assert (yield within(caller.call("com.test.add", 2, 3, scale=10))) == 50
    result = yield within(caller.call("com.test.split", "a b c"))
    assert (result.args, result.kwargs) == (["a", "b", "c"], {"count": 3})
    with pytest.raises(ApplicationError) as refused:
        yield within(caller.call("com.test.refuse", "no"))
    assert refused.value.error == "com.test.refused"
    assert refused.value.args[0] == "no" and refused.value.kwargs == {"detail": 7}
    with pytest.raises(ApplicationError) as missing:
        yield within(caller.call("com.test.nobody"))
    assert missing.value.error == "wamp.error.no_such_procedure"
    yield _leave(caller, callee)


@pytest_twisted.inlineCallbacks
def test_progressive_results(lane):
    callee, caller = yield _two_sessions(lane)

    def count_to(n, progress=None):
        for i in range(1, n):
            if progress is not None:
                progress(i)
        return n

    yield within(callee.register("com.test.count", count_to))
    seen: list[int] = []
    assert (yield within(caller.call("com.test.count", 4, on_progress=seen.append))) == 4
    assert seen == [1, 2, 3]
    yield _leave(caller, callee)


@pytest_twisted.inlineCallbacks
def test_timeout_and_cancel_leave_the_session_working(lane):
    callee, caller = yield _two_sessions(lane)
    yield within(callee.register("com.test.never", lambda: defer.Deferred()))
    yield within(callee.register("com.test.echo", lambda x: x))
    with pytest.raises(CallTimeout):
        yield within(caller.call("com.test.never", timeout=0.3))
    pending = caller.call("com.test.never")
    yield deferLater(reactor, 0.05, lambda: None)  # let the CALL reach the callee
    pending.cancel()
    with pytest.raises(defer.CancelledError):
        yield within(pending)
    assert (yield within(caller.call("com.test.echo", "still here"))) == "still here"
    yield _leave(caller, callee)


@pytest_twisted.inlineCallbacks
def test_publish_subscribe_exact_prefix_and_exclude_me(lane):
    subscriber, publisher = yield _two_sessions(lane)
    exact, prefixed, own = defer.Deferred(), defer.Deferred(), defer.Deferred()
    yield within(subscriber.subscribe("com.test.topic", lambda *args, **kwargs: exact.callback((args, kwargs))))
    yield within(subscriber.subscribe("com.test.", lambda *args, **kwargs: prefixed.callback(args), match="prefix"))
    yield within(publisher.subscribe("com.test.mine", lambda *args: own.callback(args)))
    publication = yield within(publisher.publish("com.test.topic", 1, "two", acknowledge=True, three=3))
    assert isinstance(publication, int)
    assert (yield within(exact)) == ((1, "two"), {"three": 3})
    assert (yield within(prefixed)) == (1, "two")
    yield within(publisher.publish("com.test.mine", "to myself", exclude_me=False, acknowledge=True))
    assert (yield within(own)) == ("to myself",)
    yield _leave(subscriber, publisher)


@pytest_twisted.inlineCallbacks
def test_details_of_pattern_registrations_and_subscriptions(lane):
    callee, caller = yield _two_sessions(lane)
    yield within(
        callee.register(
            "com.test.any.", lambda details: (details.procedure, details.caller), match="prefix", details=True
        )
    )
    result = yield within(caller.call("com.test.any.thing", disclose_me=True))
    assert result == ["com.test.any.thing", caller.session_id]
    event = defer.Deferred()
    yield within(
        callee.subscribe(
            "com.test..temp", lambda *args, details: event.callback(details), match="wildcard", details=True
        )
    )
    publication = yield within(caller.publish("com.test.room.temp", 20, acknowledge=True))
    details = yield within(event)
    assert (details.topic, details.publication) == ("com.test.room.temp", publication)
    yield _leave(caller, callee)


@pytest_twisted.inlineCallbacks
def test_session_meta_api(lane):
    first, second = yield _two_sessions(lane)
    count = yield within(first.call("wamp.session.count"))
    assert count >= 2
    sessions = yield within(first.call("wamp.session.list"))
    assert first.session_id in sessions and second.session_id in sessions
    yield _leave(first, second)


@pytest_twisted.inlineCallbacks
def test_reconnecting_client_registers_and_is_called(crossbar):
    client = Client(crossbar["ws"], "realm1")
    caller = None
    try:
        session = yield within(client.connect())
        yield within(client.register("com.test.client", lambda details: details.procedure, details=True))
        caller = yield within(promisifier.connect(crossbar["ws"], "realm1"))
        assert (yield within(caller.call("com.test.client"))) == "com.test.client"
        assert session.session_id > 0
    finally:
        if caller is not None:
            yield _leave(caller)
        yield within(client.leave())
