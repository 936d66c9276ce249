"""The rpc-websockets style Client and Server façades, over real sockets on 127.0.0.1."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from promisifier.client import ApplicationError, CallResult, ClientState, NotConnected, connect
from promisifier.compat.rpc_client import (
    RPC_ERROR_URI,
    Client,
    LoginFailed,
    RpcError,
    decode_login,
    login_credentials,
    namespace_for_path,
    normalize_namespace,
    realm_for_namespace,
)
from promisifier.compat.rpc_server import AUTHENTICATED_ROLE, ConnectedClient, Server
from promisifier.embed import Router
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig, Principal
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from tests.support import within

pytestmark = pytest.mark.slow

by_serializer = pytest.mark.parametrize("serializer", ["json", "msgpack"])


def next_event(emitter, name):
    """A Deferred for the next ``name`` event of a compat Client or Server."""
    d = defer.Deferred()

    def fire(*args):
        emitter.off(name, fire)
        d.callback(args)

    emitter.on(name, fire)
    return d


@pytest.fixture
def server():
    server = Server("127.0.0.1", 0)
    pytest_twisted.blockon(within(server.when_ready()))
    yield server
    pytest_twisted.blockon(within(server.close()))


@defer.inlineCallbacks
def client_for(url, serializer="json", **kwargs):
    kwargs.setdefault("reconnect_interval", 20)
    client = Client(url, serializers=(serializer,), **kwargs)
    yield within(client.connect())
    return client


# -- naming ------------------------------------------------------------------------------


def test_namespaces_and_realms():
    assert [namespace_for_path(p) for p in ("", "/", "/ws", "/ws/", "/realm1", "/ws/realm1")] == ["/"] * 6
    assert namespace_for_path("/chat") == namespace_for_path("/ws/chat") == "/chat"
    assert namespace_for_path("/game/lobby/") == "/game/lobby"
    assert realm_for_namespace("/") == "realm1" and realm_for_namespace("/game/lobby") == "game.lobby"
    assert normalize_namespace("chat") == "/chat" and normalize_namespace("/realm1") == "/"
    for bad in ("/a.b", "/a b", "/x#"):
        with pytest.raises(ValueError):
            normalize_namespace(bad)
    assert Client("ws://h:1/ws/chat", autoconnect=False).realm == "chat"
    assert Client("ws://h:1/", autoconnect=False, realm="other").realm == "other"


def test_login_credentials_round_trip():
    assert login_credentials({"authid": "alice", "ticket": "s3cret"}) == ("alice", "s3cret")
    authid, ticket = login_credentials({"username": "ann", "password": "pw"})
    assert authid == "ann" and decode_login(authid, ticket) == {"username": "ann", "password": "pw"}
    assert decode_login("alice", "s3cret") == {"authid": "alice", "ticket": "s3cret"}
    with pytest.raises(TypeError):
        login_credentials(["not", "a", "dict"])


# -- client and server -----------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_params_results_and_structured_errors(server, serializer):
    server.register("sum", lambda *numbers: sum(numbers))
    server.register("greet", lambda name, punctuation="!": f"hello {name}{punctuation}")
    server.register("many", lambda: CallResult([1, 2], {}))
    server.register("named", lambda: CallResult([], {"a": 1}))
    server.register("both", lambda: CallResult([1], {"a": 1}))
    data = {"nested": [1, "ü", None, {"deep": True}], "n": 2**40}

    def refuse(*_):
        raise server.create_error(-32050, "not today", data)

    server.register("refuse", refuse)
    yield within(server._default.methods["refuse"].when_registered())
    client = yield client_for(server.url(), serializer)
    try:
        assert (yield within(client.call("sum", [1, 2, 3]))) == 6
        assert (yield within(client.call("greet", {"name": "ann", "punctuation": "?"}))) == "hello ann?"
        assert (yield within(client.call("greet", ["bob"]))) == "hello bob!"
        assert (yield within(client.call("many"))) == [1, 2]
        assert (yield within(client.call("named"))) == {"a": 1}
        assert (yield within(client.call("both"))) == CallResult([1], {"a": 1})

        with pytest.raises(RpcError) as info:
            yield within(client.call("refuse", [1]))
        error = info.value
        assert (error.code, error.message, error.data) == (-32050, "not today", data)
        assert error.error == RPC_ERROR_URI and error.as_dict() == {
            "code": -32050,
            "message": "not today",
            "data": data,
        }

        # any WAMP client sees the same error: URI, args [message], kwargs code/message/data
        session = yield within(connect(server.url(), "realm1", serializers=(serializer,)))
        with pytest.raises(ApplicationError) as info:
            yield within(session.call("refuse"))
        assert info.value.error == RPC_ERROR_URI and info.value.args == ("not today",)
        assert info.value.kwargs == {"code": -32050, "message": "not today", "data": data}
        yield within(session.close())

        with pytest.raises(RpcError) as info:
            yield within(client.call("no.such.method"))
        assert info.value.code == -32601 and info.value.error == "wamp.error.no_such_procedure"

        with pytest.raises(ValueError):
            yield client.call("greet", {"name": "x", "timeout": 1})  # an option of the call
        with pytest.raises(TypeError):
            yield client.call("greet", "not a list")
    finally:
        yield within(client.close())


@pytest_twisted.inlineCallbacks
def test_call_timeout_in_milliseconds_and_request_ids(server):
    server.register("never", lambda: defer.Deferred())
    ids = iter(range(100, 200))
    client = yield client_for(server.url(), generate_request_id=lambda method, params: next(ids))
    try:
        yield within(server._default.methods["never"].when_registered())
        d = client.call("never", timeout=50)
        assert d.request_id == 100
        with pytest.raises(ApplicationError) as info:
            yield within(d)
        assert info.value.error == "wamp.error.timeout"
    finally:
        yield within(client.close())


@by_serializer
@pytest_twisted.inlineCallbacks
def test_events_subscribe_unsubscribe_and_notify(server, serializer):
    server.event("feed")
    server.event("secret").protected()
    assert server.event_list() == ["feed", "secret"]
    client = yield client_for(server.url(), serializer)
    listener = yield client_for(server.url(), serializer)
    try:
        assert (yield within(client.subscribe("feed"))) == {"feed": "ok"}
        got = next_event(client, "feed")
        yield within(server.emit("feed", 1, {"id": 7}))
        assert (yield within(got)) == (1, {"id": 7})

        # a protected event: one name fails, a list reports per name
        with pytest.raises(RpcError) as info:
            yield within(client.subscribe("secret"))
        assert info.value.error == "wamp.error.not_authorized"
        statuses = yield within(client.subscribe(["feed", "secret", "undeclared"]))
        assert statuses["feed"] == "socket has already been subscribed to event"
        assert statuses["secret"].startswith("wamp.error.not_authorized")
        # as rpc-websockets reports an event nobody declared (and does not subscribe)
        assert statuses["undeclared"] == "provided event invalid"
        assert (yield within(client.subscribe("undeclared"))) == {"undeclared": "provided event invalid"}
        server.event("later")
        assert (yield within(client.subscribe("later"))) == {"later": "ok"}

        # notify runs the method, and nothing answers
        noted = defer.Deferred()
        server.register("note", lambda text: noted.callback(text))
        yield within(server._default.methods["note"].when_registered())
        assert (yield within(client.notify("note", ["hi"]))) is None
        assert (yield within(noted)) == "hi"
        yield within(client.notify("no.such.method"))  # no answer, so no error either

        assert (yield within(client.unsubscribe("feed"))) == {"feed": "ok"}
        with pytest.raises(ValueError):
            yield within(client.unsubscribe("feed"))
        assert (yield within(client.unsubscribe(["later", "never"]))) == {
            "later": "ok",
            "never": "not subscribed to 'never'",
        }
    finally:
        yield within(client.close())
        yield within(listener.close())


@pytest_twisted.inlineCallbacks
def test_protected_methods_and_login(server):
    server.register("public", lambda: "everyone")
    server.register("account", lambda: "yours").protected()
    server.event("private").protected()
    logins = []

    def check(params):
        logins.append(params)
        return defer.succeed(params.get("password") == "pw")

    server.set_auth(check)
    client = yield client_for(server.url())
    opened, closed = [], []
    client.on("open", lambda: opened.append(1))
    client.on("close", lambda code, reason: closed.append(code))
    try:
        with pytest.raises(RpcError) as info:
            yield within(client.call("account"))
        assert info.value.code == -32605 and info.value.error == "wamp.error.not_authorized"

        with pytest.raises(LoginFailed) as info:
            yield within(client.login({"username": "ann", "password": "wrong"}))
        assert "wrong credentials" in str(info.value) and info.value.reason == "wamp.error.authentication_failed"
        assert (yield within(client.call("public"))) == "everyone"  # the session went on

        assert (yield within(client.login({"username": "ann", "password": "pw"}))) is True
        assert logins[-1] == {"username": "ann", "password": "pw"}
        assert (client.authid, client.authrole) == ("ann", AUTHENTICATED_ROLE)
        assert (yield within(client.call("account"))) == "yours"
        assert (yield within(client.subscribe("private"))) == {"private": "ok"}
        assert opened == [] and closed == []  # a login is not a reconnect

        account = server._default.methods["account"]
        account.public()
        other = yield client_for(server.url())
        assert (yield within(other.call("account"))) == "yours"
        yield within(other.close())
    finally:
        yield within(client.close())
    assert closed == [1000]


@pytest_twisted.inlineCallbacks
def test_remote_sessions_cannot_impersonate_the_server(server):
    server.register("mine", lambda: 1)
    server.event("news")
    yield within(server._default.methods["mine"].when_registered())
    session = yield within(connect(server.url(), "realm1"))
    try:
        with pytest.raises(ApplicationError) as info:
            yield within(session.register("mine", lambda: 2))
        assert info.value.error == "wamp.error.not_authorized"
        with pytest.raises(ApplicationError):
            yield within(session.publish("news", "fake", acknowledge=True))
        with pytest.raises(ApplicationError) as info:
            yield within(session.call("wamp.session.kill", server._default.session.session_id))
        assert info.value.error == "wamp.error.not_authorized"
        # anything else works as on a plain relay
        yield within(session.register("com.client.own", lambda: 3))
        assert (yield within(session.call("com.client.own"))) == 3
        assert (yield within(session.call("wamp.session.count"))) >= 1
    finally:
        yield within(session.close())


@pytest_twisted.inlineCallbacks
def test_namespaces_connections_and_close_namespace(server):
    events = []
    for name in ("connection", "disconnection"):
        server.on(name, lambda client, name=name: events.append((name, client)))
    chat = server.of("/chat")
    assert server.of("chat") is chat and chat.name == "/chat" and chat.realm == "chat"
    chat.register("post", lambda text: f"posted {text}")
    chat.event("message")
    assert server.event_list("/chat") == ["message"] and server.event_list() == []
    server.register("root_only", lambda: 1)
    yield within(chat.when_ready())

    connected = next_event(server, "connection")
    by_path = yield client_for(server.url("/chat"))  # ws://host:port/chat
    (first,) = yield within(connected)
    assert isinstance(first, ConnectedClient) and first.namespace == "/chat" and not first.authenticated
    by_ws_path = yield client_for(server.url("/chat").replace("/chat", "/ws/chat"), reconnect=False)
    try:
        assert (yield within(by_path.call("post", ["hi"]))) == "posted hi"
        assert (yield within(by_ws_path.call("post", ["yo"]))) == "posted yo"
        with pytest.raises(RpcError) as info:
            yield within(by_path.call("root_only"))
        assert info.value.code == -32601
        assert "post" in (yield within(by_path.list_methods()))
        assert "root_only" not in (yield within(by_path.list_methods()))

        yield within(by_path.subscribe("message"))
        heard = next_event(by_path, "message")
        yield within(chat.emit("message", "to chat"))
        assert (yield within(heard)) == ("to chat",)

        ids = set(chat.connected())
        assert ids == {by_path.session.session_id, by_ws_path.session.session_id}
        assert {c.id for c in chat.clients()} == ids and server.of("/").clients() == []

        closed = next_event(by_ws_path, "close")
        left = next_event(server, "disconnection")
        server.close_namespace("/chat")
        assert (yield within(closed))[0] == 1000
        yield within(left)
        assert by_ws_path.state is ClientState.DISCONNECTED
        assert chat.connected() == {}
        assert {client.id for name, client in events if name == "disconnection"} == ids
        assert [client for name, client in events if name == "connection"][0] == first
        again = server.of("/chat")
        assert again is not chat and again.event_list() == []
    finally:
        yield within(by_path.close())
        yield within(by_ws_path.close())


@pytest_twisted.inlineCallbacks
def test_server_events_and_close():
    server = Server("127.0.0.1", 0)
    seen = []
    for name in ("listening", "close", "error"):
        server.on(name, lambda *args, name=name: seen.append((name, args)))
    listening = next_event(server, "listening")  # emitted on a later turn than the constructor's
    (port,) = yield within(listening)
    yield within(server.when_ready())
    assert seen[0][0] == "listening" and server.port == port.getHost().port > 0

    server.register("dup", lambda: 1)
    yield within(server._default.methods["dup"].when_registered())
    session = yield within(connect(server.url(), "realm1"))
    yield within(session.register("taken.by.client", lambda: 1))
    handle = server.register("taken.by.client", lambda: 2)
    with pytest.raises(ApplicationError):
        yield within(handle.when_registered())
    assert seen[-1][0] == "error" and "taken.by.client" not in server._default.methods

    closed = session.closed
    yield within(server.close())
    assert seen[-1] == ("close", ())
    assert (yield within(closed))[0] == 1000
    with pytest.raises(ValueError):
        server.on("nonsense", print)


@pytest_twisted.inlineCallbacks
def test_server_on_an_embedded_router_keeps_its_other_realm_and_principals():
    rules = (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
    config = RouterConfig(
        realms=(RealmConfig("realm1", roles=(RoleConfig("anonymous", rules), RoleConfig("user", rules))), "other"),
        auth=AuthConfig(methods=("anonymous", "ticket"), tickets={"alice": Principal("alice", "user", "s3cret")}),
    )
    router = Router(config)
    port = yield router.listen("tcp:0:interface=127.0.0.1")
    url = f"ws://127.0.0.1:{port.getHost().port}/ws"
    server = Server(router=router)
    try:
        server.register("hidden", lambda: "ok").protected()
        server.set_auth(lambda params: params.get("code") == 42)
        yield within(server.when_ready())
        assert server.port is None
        client = yield client_for(url)
        with pytest.raises(RpcError):
            yield within(client.call("hidden"))
        # the router's own ticket principal still logs in (role "user": not "authenticated")
        yield within(client.login({"authid": "alice", "ticket": "s3cret"}))
        assert client.authrole == "user"
        yield within(client.login({"code": 42}))
        assert client.authrole == AUTHENTICATED_ROLE
        assert (yield within(client.call("hidden"))) == "ok"
        yield within(client.close())
        # the realm that is no namespace is untouched
        plain = yield within(connect(url, "other"))
        yield within(plain.register("x.y", lambda: 1))
        yield within(plain.close())
    finally:
        yield within(server.close())
        yield router.stop()
        yield port.stopListening()


# -- the client against a plain relay --------------------------------------------------------


@pytest.fixture
def ticket_router():
    """An embedded Router with a ticket principal; anonymous may only touch com.public."""
    config = RouterConfig(
        realms=(
            RealmConfig(
                "realm1",
                roles=(
                    RoleConfig(
                        "anonymous", (Permission("com.public.", "prefix", call=True, register=True, subscribe=True),)
                    ),
                    RoleConfig(
                        "user", (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
                    ),
                ),
            ),
        ),
        auth=AuthConfig(methods=("anonymous", "ticket"), tickets={"alice": Principal("alice", "user", "s3cret")}),
    )
    router = Router(config)
    port = pytest_twisted.blockon(router.listen("tcp:0:interface=127.0.0.1"))
    yield router, f"ws://127.0.0.1:{port.getHost().port}/ws"
    pytest_twisted.blockon(router.stop())
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@by_serializer
@pytest_twisted.inlineCallbacks
def test_login_with_a_ticket_principal(ticket_router, serializer):
    router, url = ticket_router
    local = yield within(router.session("realm1", authrole="user"))
    yield within(local.register("com.private.balance", lambda: 100))
    yield within(local.register("com.public.hello", lambda: "hello"))
    client = yield client_for(url, serializer)
    try:
        assert client.authrole == "anonymous"
        yield within(client.subscribe("com.public.news"))
        with pytest.raises(RpcError) as info:
            yield within(client.call("com.private.balance"))
        assert info.value.error == "wamp.error.not_authorized"

        with pytest.raises(LoginFailed) as info:
            yield within(client.login({"authid": "alice", "ticket": "wrong"}))
        assert "wrong credentials" in str(info.value)
        assert client.authrole == "anonymous" and (yield within(client.call("com.public.hello"))) == "hello"

        yield within(client.login({"authid": "alice", "ticket": "s3cret"}))
        assert (client.authid, client.authrole) == ("alice", "user")
        assert (yield within(client.call("com.private.balance"))) == 100
        # the subscription moved to the new session
        heard = next_event(client, "com.public.news")
        yield within(local.publish("com.public.news", "extra!", acknowledge=True))
        assert (yield within(heard)) == ("extra!",)
        assert (yield within(client.list_methods())) == ["com.private.balance", "com.public.hello"]
    finally:
        yield within(client.close())
        yield within(local.leave())


@pytest_twisted.inlineCallbacks
def test_reconnects_and_restores_subscriptions(ticket_router):
    router, url = ticket_router
    local = yield within(router.session("realm1", authrole="user"))
    client = yield client_for(url, max_reconnects=0)
    opened, closed = [], []
    client.on("open", lambda: opened.append(1))
    client.on("close", lambda code, reason: closed.append(code))
    try:
        yield within(client.subscribe("com.public.news"))
        reopened = next_event(client, "open")
        router.realms["realm1"].sessions[client.session.session_id].peer.drop()
        yield within(reopened)
        assert closed == [1006] and opened == [1]
        heard = next_event(client, "com.public.news")
        yield within(local.publish("com.public.news", 1, acknowledge=True))
        assert (yield within(heard)) == (1,)
    finally:
        yield within(client.close())
        yield within(local.leave())


@pytest_twisted.inlineCallbacks
def test_errors_when_the_relay_refuses(free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    errors = []
    client = Client(url, reconnect_interval=10, max_reconnects=2)
    client.on("error", errors.append)
    gave_up = next_event(client, "error")
    while len(errors) < 4:  # three refused attempts, then giving up
        yield within(gave_up)
        gave_up = next_event(client, "error")
    assert isinstance(errors[-1], NotConnected) and client.state is ClientState.GIVEN_UP
    with pytest.raises(NotConnected):
        yield client.call("x")
    with pytest.raises(NotConnected):
        yield client.subscribe("x")

    once = Client(url, reconnect=False, autoconnect=False)
    failed = next_event(once, "error")
    with pytest.raises(Exception):
        yield within(once.connect())
    assert "refused" in str((yield within(failed))[0]).lower()
    with pytest.raises(ValueError):
        yield once.close(code=1001)
