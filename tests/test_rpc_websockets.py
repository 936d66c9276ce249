"""The rpc-websockets bridge of the relay, frame by frame (JSON and msgpack).

A relay in this process with an ``[[listeners.rpc_websockets]]`` path; WAMP clients of
this package register and publish; :class:`tests.rpc_support.FrameClient` sends hand-made
frames and checks each answer against what the Node ``rpc-websockets`` server sends
(10.0.1, ``dist/index.cjs``). The real npm client is in tests/test_rpc_websockets_js.py.
"""

from __future__ import annotations

import json
import random

import msgpack
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from promisifier import ApplicationError
from tests.raw_support import no_unhandled_errors  # noqa: F401 - autouse: no exception may reach the log
from tests.relay_support import relay_config
from tests.rpc_support import FrameClient
from tests.support import until, within

pytestmark = pytest.mark.slow

RPC = """
[[listeners.rpc_websockets]]
path = "/rpc"
uri_prefix = "com.example."
"""


def rpc_url(relay, path: str = "/rpc") -> str:
    return relay.http.replace("http://", "ws://") + path


@defer.inlineCallbacks
def started(relays, text: str = RPC):
    relay = relays(relay_config(text))
    backend = yield relay.connect()
    yield backend.register("com.example.sum", lambda *a, **kw: sum(a) + sum(kw.values()))
    yield backend.register("com.example.pair", lambda: defer.succeed(None).addCallback(lambda _: [1, 2]))
    yield backend.register("com.example.echo", lambda *a, **kw: {"args": list(a), "kwargs": kw})

    def fail(*args):
        raise ApplicationError("com.example.oops", "it broke", code=7)

    yield backend.register("com.example.fail", fail)
    return relay, backend


@pytest_twisted.inlineCallbacks
def test_calls_with_list_and_object_params_and_results(relays):
    relay, _ = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    assert (yield client.call("sum", [1, 2, 3])) == {"jsonrpc": "2.0", "result": 6, "id": 1}
    assert (yield client.call("sum", {"a": 1, "b": 2}))["result"] == 3
    assert (yield client.call("echo", [1, "x"]))["result"] == {"args": [1, "x"], "kwargs": {}}
    assert (yield client.call("sum"))["result"] == 0
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_errors_are_the_node_servers(relays):
    relay, _ = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    assert (yield client.call("nope", [])) == {
        "jsonrpc": "2.0",
        "error": {"code": -32601, "message": "Method not found"},
        "id": 1,
    }
    response = yield client.call("fail", [])
    assert response["error"] == {
        "code": -32000,
        "message": "com.example.oops",
        "data": {"args": ["it broke"], "kwargs": {"code": 7}},
    }
    client.send_raw(b"{not json")
    response = yield client.next()
    assert response["id"] is None and response["error"]["code"] == -32700
    assert response["error"]["message"] == "Parse error"
    cases = [
        (5, {"code": -32600, "message": "Invalid Request"}, None),
        (
            {"jsonrpc": "1.0", "method": "sum", "id": 9},
            {"code": -32600, "message": "Invalid Request", "data": "Invalid JSON RPC version"},
            9,
        ),
        (
            {"jsonrpc": "2.0", "id": 10},
            {"code": -32602, "message": "Invalid params", "data": "Method not specified"},
            10,
        ),
        (
            {"jsonrpc": "2.0", "method": 5, "id": 11},
            {"code": -32600, "message": "Invalid Request", "data": "Invalid method name"},
            11,
        ),
        (
            {"jsonrpc": "2.0", "method": "sum", "params": "1,2", "id": 12},
            {"code": -32600, "message": "Invalid Request"},
            12,
        ),
        ({"jsonrpc": "2.0", "method": "rpc.on", "id": 13}, {"code": -32000, "message": "Event not provided"}, 13),
        ({"jsonrpc": "2.0", "method": "rpc.off", "id": 14}, {"code": -32000, "message": "Event not provided"}, 14),
        ({"jsonrpc": "2.0", "method": "rpc.login", "id": 15}, {"code": -32604, "message": "Params not found"}, 15),
    ]
    for request, error, request_id in cases:
        client.send(request)
        assert (yield client.next()) == {"jsonrpc": "2.0", "error": error, "id": request_id}
    client.send([])
    assert (yield client.next()) == {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request", "data": "Invalid array"},
        "id": None,
    }
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_batch_answers_in_one_frame_without_the_notifications(relays):
    relay, backend = yield started(relays)
    seen = []
    yield backend.register("com.example.note", lambda *a: seen.append(a))
    client = yield FrameClient.connect(rpc_url(relay))
    client.send(
        [
            {"jsonrpc": "2.0", "method": "sum", "params": [1, 1], "id": "a"},
            {"jsonrpc": "2.0", "method": "note", "params": ["hi"]},
            {"jsonrpc": "2.0", "method": "nope", "id": "b"},
            7,
            [],
        ]
    )
    assert (yield client.next()) == [
        {"jsonrpc": "2.0", "result": 2, "id": "a"},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "b"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
        {
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": "Invalid Request", "data": "Invalid JSON RPC version"},
            "id": None,
        },
    ]
    assert seen == [("hi",)]
    # a batch of notifications only: nothing comes back, the methods ran
    client.send([{"jsonrpc": "2.0", "method": "note", "params": [n]} for n in (1, 2)])
    assert (yield until(lambda: len(seen) == 3))
    assert (yield client.call("sum", [4]))["result"] == 4
    assert client.frames.pending == []
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_events_subscribe_unsubscribe_and_their_statuses(relays):
    relay, backend = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    response = yield client.call("rpc.on", ["tick", "tock", "not valid", 5])
    assert response["result"] == {
        "tick": "ok",
        "tock": "ok",
        "not valid": "provided event invalid",
        "5": "provided event invalid",
    }
    assert (yield client.call("rpc.on", ["tick"]))["result"] == {"tick": "socket has already been subscribed to event"}
    yield backend.publish("com.example.tick", {"n": 1})
    assert (yield client.next()) == {"notification": "tick", "params": {"n": 1}}
    yield backend.publish("com.example.tock", 1, 2)
    assert (yield client.next()) == {"notification": "tock", "params": [1, 2]}
    yield backend.publish("com.example.tock", n=3)
    assert (yield client.next()) == {"notification": "tock", "params": {"n": 3}}
    # a name listed twice: the second answer wins, as in the Node server's result object
    response = yield client.call("rpc.off", ["tick", "tick", "never", "not valid"])
    assert response["result"] == {
        "tick": "not subscribed",
        "never": "not subscribed",
        "not valid": "provided event invalid",
    }
    yield backend.publish("com.example.tick", {"n": 2})
    yield backend.publish("com.example.tock", "last")
    assert (yield client.next()) == {"notification": "tock", "params": ["last"]}
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_declared_events_only(relays):
    relay, _ = yield started(relays, RPC + 'events = ["news"]\n')
    client = yield FrameClient.connect(rpc_url(relay))
    response = yield client.call("rpc.on", ["news", "other"])
    assert response["result"] == {"news": "ok", "other": "provided event invalid"}
    response = yield client.call("rpc.off", ["other", "news"])
    assert response["result"] == {"other": "provided event invalid", "news": "ok"}
    assert (yield client.call("rpc.off", ["news"]))["result"] == {"news": "not subscribed"}
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_notification_runs_the_method_without_an_answer(relays):
    relay, backend = yield started(relays)
    seen = []
    yield backend.register("com.example.note", lambda *a, **kw: seen.append((a, kw)))
    client = yield FrameClient.connect(rpc_url(relay))
    client.send({"jsonrpc": "2.0", "method": "note", "params": {"x": 1}})
    client.send({"jsonrpc": "2.0", "method": "fail", "params": [], "id": None})
    assert (yield until(lambda: seen == [((), {"x": 1})]))
    assert (yield client.call("sum", [1]))["result"] == 1
    assert client.frames.pending == []
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_msgpack_in_binary_frames_is_answered_in_kind(relays):
    relay, backend = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    client.send({"jsonrpc": "2.0", "method": "sum", "params": [2, 3], "id": 1}, binary=True)
    assert (yield client.next_frame()) == ({"jsonrpc": "2.0", "result": 5, "id": 1}, True)
    client.send({"jsonrpc": "2.0", "method": "sum", "params": [2, 2], "id": 2})
    assert (yield client.next_frame()) == ({"jsonrpc": "2.0", "result": 4, "id": 2}, False)
    client.send({"jsonrpc": "2.0", "method": "rpc.on", "params": ["tick"], "id": 3}, binary=True)
    assert (yield client.next_frame()) == ({"jsonrpc": "2.0", "result": {"tick": "ok"}, "id": 3}, True)
    yield backend.publish("com.example.tick", b"\x00\x01", n=1)
    value, binary = yield client.next_frame()
    assert binary and value == {"notification": "tick", "params": [b"\x00\x01", {"n": 1}]}
    client.send_raw(b"\xc1", binary=True)
    value, binary = yield client.next_frame()
    assert binary and value["error"]["code"] == -32700
    yield client.close()


LOGIN = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"
[listeners.auth]
methods = ["anonymous", "ticket"]
[listeners.auth.ticket.principals.alice]
ticket = "alice-secret"
role = "user"
[listeners.auth.ticket.principals.backend]
ticket = "backend-secret"
role = "backend"
[[listeners.rpc_websockets]]
path = "/rpc"
uri_prefix = "com.example."

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = "com.example.public"
call = true
subscribe = true
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true
subscribe = true
[[realms.roles]]
name = "backend"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
call = true
register = true
publish = true
subscribe = true
"""


@pytest_twisted.inlineCallbacks
def test_login_through_the_listeners_ticket_auth(relays):
    config = relay_config(LOGIN)
    relay = relays(config)
    backend = yield relay.connect(authid="backend", credentials={"ticket": "backend-secret"})
    yield backend.register("com.example.public", lambda: "public")
    yield backend.register("com.example.private", lambda: "private")
    client = yield FrameClient.connect(rpc_url(relay))
    assert (yield client.call("public"))["result"] == "public"
    assert (yield client.call("private"))["error"] == {"code": -32605, "message": "Method forbidden"}
    assert (yield client.call("rpc.on", ["secret"]))["error"] == {"code": -32606, "message": "Event forbidden"}
    assert (yield client.call("rpc.on", ["public"]))["result"] == {"public": "ok"}
    assert (yield client.call("rpc.login", {"authid": "alice", "ticket": "wrong"}))["result"] is False
    assert (yield client.call("private"))["error"]["code"] == -32605
    assert (yield client.call("rpc.login", {"authid": "alice", "ticket": "alice-secret"}))["result"] is True
    assert (yield client.call("private"))["result"] == "private"
    assert (yield client.call("rpc.on", ["secret"]))["result"] == {"secret": "ok"}
    methods = (yield client.call("__listMethods"))["result"]
    assert methods == ["__listMethods", "private", "public", "rpc.login"]
    # the subscription made before the login moved to the new session
    yield backend.publish("com.example.public", "still here")
    assert (yield client.next()) == {"notification": "public", "params": ["still here"]}
    sessions = [s for s in relay.router.connections if s.authrole in ("user", "anonymous")]
    assert [(s.authid, s.authrole) for s in sessions] == [("alice", "user")]
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_each_connection_is_a_session_of_the_realm(relays):
    relay, backend = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    yield client.call("sum", [1])
    sessions = yield backend.call("wamp.session.list")
    bridge = [s for s in sessions if s != backend.session_id]
    assert len(bridge) == 1
    details = yield backend.call("wamp.session.get", bridge[0])
    assert details["transport"]["type"] == "rpc-websockets"
    assert details["authrole"] == "anonymous"
    status = yield relay.get_json("/status.json")
    kinds = json.dumps(status)
    assert '"rpc-websockets"' in kinds
    yield client.close()
    assert (yield until(lambda: relay.router.session_count == 1))


@pytest_twisted.inlineCallbacks
def test_a_killed_session_closes_the_connection_with_1001(relays):
    relay, backend = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    yield client.call("sum", [1])
    (bridge,) = [s for s in (yield backend.call("wamp.session.list")) if s != backend.session_id]
    yield backend.call("wamp.session.kill", bridge, reason="wamp.close.killed", message="go")
    code, reason = yield within(client.closed)
    assert (code, reason) == (1001, "wamp.close.killed")
    assert (yield until(lambda: relay.router.session_count == 1))


@pytest_twisted.inlineCallbacks
def test_namespaces_select_realms_and_unknown_ones_are_refused(relays):
    relay, _ = yield started(relays, RPC + '[[realms]]\nname = "realm1"\n[[realms]]\nname = "chat"\n')
    chat = yield FrameClient.connect(rpc_url(relay, "/rpc/chat"))
    assert (yield chat.call("sum", [1]))["error"]["code"] == -32601  # nothing registered in realm chat
    assert [s.realm.name for s in relay.router.connections if s.realm and s.authrole == "anonymous"].count("chat") == 1
    with pytest.raises(ConnectionError):
        yield FrameClient.connect(rpc_url(relay, "/rpc/nowhere"))
    yield chat.close()


@pytest_twisted.inlineCallbacks
def test_call_timeout_and_pending_call_limit(relays):
    text = RPC + "call_timeout = 200\n[limits]\nmax_pending_calls_per_caller = 1\n"
    relay, backend = yield started(relays, text)
    waiting: list = []

    def slow():
        d = defer.Deferred()
        waiting.append(d)
        return d

    yield backend.register("com.example.slow", slow)
    client = yield FrameClient.connect(rpc_url(relay))
    client.send({"jsonrpc": "2.0", "method": "slow", "id": 1})
    client.send({"jsonrpc": "2.0", "method": "slow", "id": 2})
    first = yield client.next()
    second = yield client.next()
    by_id = {first["id"]: first, second["id"]: second}
    assert by_id[2]["error"]["message"] == "promisifier.error.limit_exceeded"
    assert by_id[1]["error"]["message"] == "wamp.error.timeout"
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_oversized_message_closes_with_1009(relays):
    text = '[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[listeners.limits]\nmax_message_size = 1000\n' + RPC
    relay, _ = yield started(relays, text)
    client = yield FrameClient.connect(rpc_url(relay))
    client.send({"jsonrpc": "2.0", "method": "sum", "params": ["x" * 2000], "id": 1})
    code, _ = yield within(client.closed)
    assert code == 1009
    assert (yield until(lambda: relay.router.session_count == 1))


def _random_value(rng: random.Random, depth: int = 0):
    kinds = ["int", "str", "none", "bool", "float"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, -1, 1, 2**31, 2**53, -(2**63), rng.randint(-1000, 1000)])
    if kind == "str":
        return rng.choice(["", "rpc.on", "rpc.off", "rpc.login", "__listMethods", "sum", "a b", "2.0", "é\u0000"])
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.random() * 1e6
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(["jsonrpc", "method", "params", "id", "x"]): _random_value(rng, depth + 1)
        for _ in range(rng.randint(0, 5))
    }


def _random_request(rng: random.Random):
    request = {"jsonrpc": rng.choice(["2.0", "2.0", "1.0", 2]), "method": _random_value(rng), "id": _random_value(rng)}
    if rng.random() < 0.8:
        request["params"] = _random_value(rng)
    if rng.random() < 0.3:
        del request[rng.choice(list(request))]
    return request


@pytest_twisted.inlineCallbacks
def test_fuzz_random_json_and_msgpack_frames(relays):
    """Random frames (about 600, fixed seed): the relay answers or stays silent, never
    breaks; the same connection still works afterwards and the router is idle at the end."""
    relay, backend = yield started(relays)
    # the backend's own procedures fail on some fuzzed arguments (sum of an int and a
    # string): the caller gets wamp.error.runtime_error; the bug is the test's, not logged
    backend_bugs: list = []
    backend.on_user_error = lambda failure, what: backend_bugs.append(failure.type)
    rng = random.Random(15)
    client = yield FrameClient.connect(rpc_url(relay))
    for round_ in range(600):
        binary = rng.random() < 0.5
        shape = rng.random()
        if shape < 0.1:
            # garbage: any bytes as msgpack, any text as JSON (invalid UTF-8 closes, below)
            if binary:
                payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            else:
                payload = "".join(
                    rng.choice('{}[]":,0123456789aeflnrstu\\ é') for _ in range(rng.randint(0, 40))
                ).encode()
            client.send_raw(payload, binary)
            continue
        value = _random_request(rng) if shape < 0.7 else [_random_request(rng) for _ in range(rng.randint(0, 4))]
        if not binary:
            value = json.loads(json.dumps(value))
        client.send(value, binary)
        if round_ % 50 == 0:
            yield task.deferLater(reactor, 0, lambda: None)
    client.send({"jsonrpc": "2.0", "method": "sum", "params": [40, 2], "id": "last"})
    while True:
        value = yield client.next()
        if isinstance(value, dict) and value.get("id") == "last":
            break
    assert value["result"] == 42
    yield client.close()
    assert (yield until(lambda: relay.router.session_count == 1))
    assert msgpack  # both codecs were exercised


@pytest_twisted.inlineCallbacks
def test_invalid_utf8_in_a_text_frame_closes_with_1007(relays):
    relay, _ = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    client.send_raw(b'{"jsonrpc": "2.0", "method": "\xff"}')
    code, _ = yield within(client.closed)
    assert code == 1007


def test_config_checks_the_paths():
    from promisifier.relay.relay_config import ConfigError

    with pytest.raises(ConfigError) as raised:
        relay_config(
            '[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[[listeners.rpc_websockets]]\npath = "/ws/x"\nbogus = 1\n'
        )
    text = str(raised.value)
    assert "listeners[0].rpc_websockets[0].bogus: unknown key" in text
    assert "listeners[0].rpc_websockets[0].path: '/ws/x' overlaps '/ws'" in text


@pytest_twisted.inlineCallbacks
def test_the_server_facade_speaks_the_dialect_on_its_own_port():
    """promisifier.compat.Server: rpc-websockets clients and WAMP clients on one port."""
    from promisifier import connect
    from promisifier.compat.rpc_server import Server

    server = Server("127.0.0.1", 0)
    yield within(server.when_ready())
    try:
        server.register("sum", lambda *n: sum(n))

        def refuse():
            raise server.create_error(-32001, "no account", {"user": None})

        server.register("account", refuse)
        server.event("feed")
        server.of("/chat").register("post", lambda text: f"posted {text}")
        yield within(server._default.methods["account"].when_registered())
        yield within(server.of("/chat").methods["post"].when_registered())
        client = yield FrameClient.connect(server.url())
        assert (yield client.call("sum", [1, 2]))["result"] == 3
        assert (yield client.call("account"))["error"] == {
            "code": -32001,
            "message": "no account",
            "data": {"user": None},
        }
        assert (yield client.call("rpc.on", ["feed", "other"]))["result"] == {
            "feed": "ok",
            "other": "provided event invalid",
        }
        yield server.emit("feed", {"id": 7})
        assert (yield client.next()) == {"notification": "feed", "params": {"id": 7}}
        assert (yield client.call("__listMethods"))["result"] == ["__listMethods", "account", "sum", "rpc.login"]
        chat = yield FrameClient.connect(server.url("/chat"))
        assert (yield chat.call("post", ["hi"]))["result"] == "posted hi"
        with pytest.raises(ConnectionError):
            yield FrameClient.connect(server.url() + "nowhere")
        # a WAMP client on the same port (it offers a wamp.2.* subprotocol)
        session = yield within(connect(server.url(), "realm1"))
        assert (yield within(session.call("sum", 4, 5))) == 9
        yield within(session.leave())
        yield chat.close()
        yield client.close()
    finally:
        yield within(server.close())


@pytest_twisted.inlineCallbacks
def test_requests_after_the_session_ended_are_answered(relays):
    """A request that arrives after the router ended the session (the close frame is on
    its way) gets an answer or nothing, never a Deferred left hanging."""
    relay, backend = yield started(relays)
    client = yield FrameClient.connect(rpc_url(relay))
    yield client.call("sum", [1])
    (bridge,) = [s for s in relay.router.connections if getattr(s.peer, "transport_type", None) == "rpc-websockets"]
    link = bridge.peer
    link.end(1000, "test")
    reply = yield within(link.request([48, 0, {}, "com.example.sum", [1]]))
    assert reply[0] == 8 and reply[4] == "wamp.error.canceled"
    yield client.close()


@pytest_twisted.inlineCallbacks
def test_a_result_that_cannot_be_encoded_gets_an_internal_error(relays):
    relay, _ = yield started(relays)
    backend = yield relay.connect(serializers=("msgpack",))
    deep: list = []
    for _ in range(300):  # msgpack carries it; orjson writes 255 levels at most
        deep = [deep]
    yield backend.register("com.example.deep", lambda: deep)
    yield backend.register("com.example.blob", lambda: b"\x00\xff")
    client = yield FrameClient.connect(rpc_url(relay))
    response = yield client.call("deep")
    assert response["error"]["code"] == -32603 and response["error"]["message"] == "Internal error"
    assert (yield client.call("blob"))["result"] == "AP8="  # bytes: base64 in JSON
    yield client.close()
