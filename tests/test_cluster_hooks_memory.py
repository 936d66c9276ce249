"""The router's links to other nodes, driven in memory (tests/memory_router.py): what the
broker and the dealer hand to their link and wait for, and how they route to a session
standing for another node's callees; which ids they give registrations and subscriptions;
what the meta API hands over. The link here is a recording one of the test's own (the
interfaces are the router's: ``BrokerLink``, ``DealerLink``, ``MetaLink``); the real one, over
Redis, is tested with relay processes in tests/test_cluster_*.py."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from promisifier.wire import IdSequence
from promisifier.wire.messages import (
    CALL,
    ERROR,
    INVOCATION,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
)
from tests.memory_router import MemoryRouter


class Link:
    """Records what the router hands over; its answers are Deferreds the test fires."""

    def __init__(self) -> None:
        self.handed: list[tuple] = []
        self.listening: dict[tuple[str, str], defer.Deferred] = {}
        self.unlistened: list[tuple[str, str]] = []
        self.registering: dict[tuple[str, str], defer.Deferred] = {}
        self.unregistered: list[tuple[str, str]] = []
        #: (kind, uri, match) -> the id every node gives it
        self.ids: dict[tuple[str, str, str], int] = {}
        self.item_events: list[tuple[str, int, int]] = []

    def _id(self, kind: str, uri: str, match: str) -> int:
        return self.ids.setdefault((kind, uri, match), 1000 + len(self.ids))

    def registration_id(self, realm: str, uri: str, match: str) -> int:
        return self._id("registration", uri, match)

    def subscription_id(self, realm: str, uri: str, match: str) -> int:
        return self._id("subscription", uri, match)

    # MetaLink
    def session_joined(self, *args: Any) -> None:
        pass

    def session_left(self, *args: Any) -> None:
        pass

    def item_event(self, realm: str, topic: str, session_id: int, item: Any) -> None:
        self.item_events.append((topic, session_id, item.id))

    # BrokerLink
    def published(self, *args: Any) -> None:
        self.handed.append(args)

    def listen(self, realm: str, uri: str, match: str) -> defer.Deferred:
        return self.listening.setdefault((uri, match), defer.Deferred())

    def unlisten(self, realm: str, uri: str, match: str) -> None:
        self.unlistened.append((uri, match))

    def retained(self, realm: str) -> None:
        return None

    # DealerLink
    def register(self, realm: str, uri: str, match: str, invoke: str) -> defer.Deferred:
        return self.registering.setdefault((uri, match), defer.Deferred())

    def unregister(self, realm: str, uri: str, match: str) -> None:
        self.unregistered.append((uri, match))


class RemoteCallees:
    """A session standing for another node's callees: calls are handed to it whole."""

    remote = True
    session_id = 0
    authid = None
    authrole = None

    class _Peer:
        congested = False
        peer = "cluster:other"

    def __init__(self, realm: Any) -> None:
        self.realm = realm
        self.connection = self._Peer()
        self.invocation_ids = IdSequence()
        self.invoked: list[tuple[Any, list]] = []
        self.sent: list[list] = []

    def has_feature(self, role: str, feature: str) -> bool:
        return True

    def next_invocation_id(self) -> int:
        return self.invocation_ids.next()

    def invoke(self, invocation: Any, message: list) -> bool:
        self.invoked.append((invocation, message))
        return True

    def send(self, message: list) -> bool:
        self.sent.append(message)
        return True

    def send_error(self, request_type: int, request_id: int, uri: str, args: list | None = None, **_: Any) -> None:
        self.send([ERROR, request_type, request_id, {}, uri, *([args] if args is not None else [])])


@pytest.fixture
def memory():
    memory = MemoryRouter()
    link = Link()
    realm = memory.realm()
    realm.broker.link = link
    realm.dealer.link = link
    memory.link = link
    yield memory
    memory.assert_idle()


def test_subscribed_waits_until_the_link_listens_and_a_departed_session_stops_listening(memory):
    link = memory.link
    subscriber = memory.join()
    request_id = subscriber.next_request_id()
    subscriber.send_raw([SUBSCRIBE, request_id, {"match": "prefix"}, "com.x"])
    assert subscriber.of_type(SUBSCRIBED) == []
    link.listening[("com.x", "prefix")].callback(None)
    assert subscriber.last()[:2] == [SUBSCRIBED, request_id]
    # a second subscriber of the same subscription does not wait
    other = memory.join()
    other.subscribe("com.x", match="prefix")
    # one that leaves before the link answered: the link stops listening
    quitter = memory.join()
    quitter.send_raw([SUBSCRIBE, quitter.next_request_id(), {}, "com.y"])
    quitter.leave()
    link.listening[("com.y", "exact")].callback(None)
    assert ("com.y", "exact") in link.unlistened
    subscriber.leave()
    other.leave()
    assert ("com.x", "prefix") in link.unlistened


def test_each_publication_is_handed_over_once_and_one_from_elsewhere_is_delivered_with_its_filters(memory):
    link = memory.link
    subscriber = memory.join()
    link.listen("realm1", "com.t", "exact").callback(None)
    subscription = subscriber.subscribe("com.t")
    publisher = memory.join()
    publisher.publish("com.t", [1], exclude_authrole=["nobody"])
    [(realm, topic, payload, _, details, options)] = [h for h in link.handed if h[1] == "com.t"]
    assert (realm, topic, payload, details, options) == ("realm1", "com.t", [[1]], {}, {"exclude_authrole": ["nobody"]})
    broker = memory.realm().broker
    broker.deliver("com.t", [[2]], 77, {"publisher": 5}, {})
    broker.deliver("com.t", [[3]], 78, {}, {"exclude": [subscriber.session_id]})
    events = subscriber.events()
    assert [e[4] for e in events] == [[1], [2]]
    assert events[1][1:4] == [subscription, 77, {"publisher": 5}]
    assert [h for h in link.handed if h[1] == "com.t"][1:] == [], "what came from elsewhere is not handed back"


def test_the_first_callee_waits_for_the_link_and_a_conflict_elsewhere_is_procedure_already_exists(memory):
    link = memory.link
    callee = memory.join()
    request_id = callee.next_request_id()
    callee.send_raw([REGISTER, request_id, {}, "com.p"])
    assert callee.of_type(REGISTERED) == []
    link.registering[("com.p", "exact")].callback(None)
    assert callee.last()[:2] == [REGISTERED, request_id]
    # the link says another node holds it
    other = memory.join()
    request_id = other.next_request_id()
    other.send_raw([REGISTER, request_id, {"invoke": "roundrobin"}, "com.q"])
    link.registering[("com.q", "exact")].callback("single")
    assert other.error_of(REGISTER, request_id)[4] == "wamp.error.procedure_already_exists"
    assert memory.realm().dealer.lookup("com.q") is None
    callee.leave()
    assert link.unregistered == [("com.p", "exact")]
    other.leave()


def test_calls_reach_another_nodes_callees_whole_and_forwarded_calls_stay_here(memory):
    dealer = memory.realm().dealer
    remote = RemoteCallees(memory.realm())
    dealer.attach(remote)
    assert dealer.link_callee(remote, "com.r", "exact", "roundrobin")
    caller = memory.join()
    request_id = caller.call("com.r", [1], disclose_me=True)
    [(invocation, message)] = remote.invoked
    assert invocation.caller.session_id == caller.session_id and invocation.call_request_id == request_id
    assert message[0] == INVOCATION and message[3]["caller"] == caller.session_id and message[4] == [1]
    dealer.on_yield(remote, [70, message[1], {}, ["done"]])
    assert caller.finals_of(request_id)[0][:4] == [RESULT, request_id, {}, ["done"]]

    # a call forwarded from another node never goes back to a remote callee
    forwarded = RemoteCallees(memory.realm())
    dealer.attach(forwarded)
    dealer.route_call(forwarded, [CALL, 9, {}, "com.r"])
    assert remote.invoked[1:] == []
    assert forwarded.sent[-1][:1] == [ERROR] and forwarded.sent[-1][4] == "wamp.error.no_eligible_callee"

    # a local callee joins the shared registration: the forwarded call goes there
    local = memory.join()
    memory.link.register("realm1", "com.r", "exact", "roundrobin").callback(None)
    local.register("com.r", invoke="roundrobin")
    dealer.route_call(forwarded, [CALL, 10, {}, "com.r"])
    assert local.invocations()[-1][0] == INVOCATION
    local.yield_(local.invocations()[-1][1], ["here"])
    assert forwarded.sent[-1][:4] == [RESULT, 10, {}, ["here"]]
    dealer.detach(forwarded)
    dealer.detach(remote)
    caller.leave()
    local.leave()


def test_a_call_that_finds_another_node_gone_moves_to_a_live_callee(memory):
    dealer = memory.realm().dealer
    remote = RemoteCallees(memory.realm())
    dealer.attach(remote)
    local = memory.join()
    memory.link.register("realm1", "com.m", "exact", "roundrobin").callback(None)
    local.register("com.m", invoke="roundrobin")
    assert dealer.link_callee(remote, "com.m", "exact", "roundrobin")
    caller = memory.join()
    request_id = caller.call("com.m", [1])
    if not remote.invoked:  # roundrobin started with the local callee: the next goes remote
        local.yield_(local.invocations()[-1][1], ["local"])
        request_id = caller.call("com.m", [1])
    [(invocation, message)] = remote.invoked
    remote.reachable = False
    dealer.redirect(invocation, message, "cluster node other is gone")
    [moved] = local.invocations()[-1:]
    assert moved[0] == INVOCATION and moved[4] == [1]
    local.yield_(moved[1], ["moved"])
    assert caller.finals_of(request_id)[0][:4] == [RESULT, request_id, {}, ["moved"]]
    # with nobody left to take it, the call fails, naming why
    local.leave()
    request_id = caller.call("com.m", [2])
    [(invocation, message)] = remote.invoked[1:]
    dealer.redirect(invocation, message, "cluster node other is gone")
    error = caller.error_of(CALL, request_id)
    assert error[4] == "wamp.error.canceled" and error[5] == ["cluster node other is gone"]
    dealer.detach(remote)
    caller.leave()


def test_ids_come_from_the_link_and_meta_events_go_through_it(memory):
    link = memory.link
    realm = memory.realm()
    realm.meta.link = link
    link.ids[("subscription", "com.taken", "exact")] = 1000  # a hash collision with com.t
    for topic in ("wamp.subscription.on_create", "com.t", "com.taken"):
        link.listen("realm1", topic, "exact").callback(None)
    watcher = memory.join()
    watcher.subscribe("wamp.subscription.on_create")
    subscriber = memory.join()
    first = subscriber.subscribe("com.t")
    assert first == link.ids[("subscription", "com.t", "exact")]
    # the id another subscription has here already: this node picks one of its own
    second = subscriber.subscribe("com.taken")
    assert second != first and realm.broker.subscription(second).uri == "com.taken"
    assert [e for e in link.item_events if e[2] == first] == [
        ("wamp.subscription.on_create", subscriber.session_id, first),
        ("wamp.subscription.on_subscribe", subscriber.session_id, first),
    ]
    assert watcher.events() == [], "the link publishes them, not the meta API"

    callee = memory.join()
    request_id = callee.next_request_id()
    callee.send_raw([REGISTER, request_id, {}, "com.p"])
    link.registering[("com.p", "exact")].callback(None)
    registration_id = callee.last()[2]
    assert registration_id == link.ids[("registration", "com.p", "exact")]
    remote = RemoteCallees(realm)
    realm.dealer.attach(remote)
    assert realm.dealer.link_callee(remote, "com.q", "exact", "single")
    assert realm.dealer.lookup("com.q").id == link.ids[("registration", "com.q", "exact")]
    callee.leave()
    assert [topic for topic, _, i in link.item_events if i == registration_id] == [
        "wamp.registration.on_create",
        "wamp.registration.on_register",
        "wamp.registration.on_unregister",
        "wamp.registration.on_delete",
    ]
    realm.dealer.detach(remote)
    realm.meta.link = None
    subscriber.leave()
    watcher.leave()
