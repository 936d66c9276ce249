"""Routing sees a session only through :class:`promisifier.router.routed.RoutedSession`: a
session that is no :class:`RouterSession` (as one joined on another relay node would be)
registers, is called, subscribes, receives events and is described by the meta API; the
cluster's stand-ins for sessions of other nodes are RoutedSessions too, held by a realm
while its dealer has them attached, never listed among its sessions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from promisifier.cluster.proxies import RemoteCallee, RemoteCaller
from promisifier.router.routed import RoutedSession
from promisifier.router.session import RouterSession
from promisifier.wire.messages import (
    CALL,
    EVENT,
    INVOCATION,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    YIELD,
)
from tests.memory_router import MemoryRouter

ROUTER = Path(__file__).resolve().parent.parent / "promisifier" / "router"


class _FarPeer:
    connection_id = 0
    peer = "node:b"
    serializer_name = None
    congested = False

    def __init__(self) -> None:
        self.shared: list[list] = []

    def send(self, message: list) -> None:
        raise AssertionError("routing sends through the session, not its peer")

    def send_shared(self, message: list, encoded: dict[str, bytes]) -> bool:
        self.shared.append(message)
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        pass


class FarSession:
    """A RoutedSession and nothing more."""

    remote = False

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.authid = "far"
        self.authrole = "anonymous"
        self.connection = _FarPeer()
        self.sent: list[list] = []
        self.closed_with: str | None = None
        self.last_send_error = ""
        self._invocations = 0

    def send(self, message: list) -> bool:
        self.sent.append(message)
        return True

    def send_error(self, request_type, request_id, error_uri, args=None, kwargs=None, details=None) -> None:
        self.sent.append(["ERROR", request_type, request_id, error_uri, args])

    def has_feature(self, role: str, feature: str) -> bool:
        return False

    def next_invocation_id(self) -> int:
        self._invocations += 1
        return self._invocations

    def details(self) -> dict[str, Any]:
        return {"session": self.session_id, "authid": self.authid, "where": "node b"}

    def goodbye(self, reason: str, message: str = "") -> None:
        self.closed_with = reason

    def protocol_violation(self, text: str) -> None:
        self.closed_with = "wamp.error.protocol_violation"

    def log_fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id}


MEMBERS = sorted({*RoutedSession.__annotations__, *(name for name in vars(RoutedSession) if not name.startswith("_"))})


@pytest.mark.parametrize("member", MEMBERS)
def test_a_router_session_has_every_member_of_the_interface(member):
    memory = MemoryRouter()
    client = memory.join()
    assert isinstance(client.session, RouterSession)
    assert hasattr(client.session, member)
    memory.assert_idle()


@pytest.mark.parametrize("module", ["dealer", "broker", "meta", "authz", "realm", "realm_view", "routed", "trace"])
def test_routing_modules_do_not_know_the_session_state_machine(module):
    tree = ast.parse((ROUTER / f"{module}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "promisifier.router.session" not in imported


def test_a_session_that_is_not_a_router_session_is_routed_to():
    memory = MemoryRouter()
    realm = memory.realm()
    far: RoutedSession = FarSession(4242)
    realm.attach(far)

    realm.dealer.on_register(far, [REGISTER, 1, {}, "com.far.add"])
    assert far.sent[-1][0] == REGISTERED
    realm.broker.on_subscribe(far, [SUBSCRIBE, 2, {}, "com.far.news"])
    assert far.sent[-1][0] == SUBSCRIBED

    near = memory.join()
    request_id = near.call("com.far.add", [1, 2])
    invocation = far.sent[-1]
    assert invocation[0] == INVOCATION and invocation[1] == 1 and invocation[4] == [1, 2]
    realm.dealer.on_yield(far, [YIELD, invocation[1], {}, [3]])
    assert near.finals_of(request_id) == [[RESULT, request_id, {}, [3]]]

    near.publish("com.far.news", ["hello"])
    assert [event[0] for event in far.connection.shared] == [EVENT]

    described = near.call_and_answer("wamp.session.get", [4242])
    assert described[3] == [far.details()]

    near.call_and_answer("wamp.session.kill", [4242])
    assert far.closed_with == "wamp.close.killed"

    realm.detach(far)
    assert near.call_and_answer("com.far.add", [1, 2])[0] != RESULT
    memory.assert_idle()


class _Cluster:
    """What a remote stand-in asks of its cluster node, recorded."""

    def __init__(self) -> None:
        self.answers: list[list] = []

    def forward_answer(self, caller: Any, message: list) -> None:
        self.answers.append(message)


@pytest.mark.parametrize("member", MEMBERS)
def test_the_clusters_stand_ins_have_every_member_of_the_interface(member):
    memory = MemoryRouter()
    realm = memory.realm()
    for stand_in in (
        RemoteCallee(_Cluster(), realm, "b"),  # type: ignore[arg-type]
        RemoteCaller(_Cluster(), realm, "b", 7, "far", "anonymous"),  # type: ignore[arg-type]
    ):
        assert hasattr(stand_in, member)
        assert stand_in.remote is True


def test_a_realm_holds_a_remote_caller_while_the_dealer_has_it_attached_but_never_lists_it():
    memory = MemoryRouter()
    realm = memory.realm()
    cluster = _Cluster()
    caller = RemoteCaller(cluster, realm, "b", 7, "far", "anonymous")  # type: ignore[arg-type]
    assert not realm.holds(caller)

    callee = memory.join()
    callee.register("com.here.add")
    realm.dealer.attach(caller)
    assert realm.holds(caller)
    realm.dealer.route_call(caller, [CALL, 1, {}, "com.here.add", [1, 2]])
    invocation = callee.invocations()[-1]
    callee.yield_(invocation[1], [3])
    assert cluster.answers == [[RESULT, 1, {}, [3]]]
    assert 7 not in realm.sessions and realm.meta.procedures["wamp.session.count"](caller, [], {}) == 1

    realm.dealer.detach(caller)
    assert not realm.holds(caller)
    callee.leave()
    memory.assert_idle()


def test_a_session_that_left_is_no_longer_held():
    memory = MemoryRouter()
    client = memory.join()
    session = client.session
    realm = memory.realm()
    assert realm.holds(session)
    client.leave()
    assert not realm.holds(session)
