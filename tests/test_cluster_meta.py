"""Meta events across the nodes of a cluster: ``wamp.session.on_join``/``on_leave``,
``wamp.registration.on_register`` and testaments of a session on one node reach the
subscribers on the other, once."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

import promisifier
from promisifier import ApplicationError
from tests.support import until, within

pytestmark = pytest.mark.slow


@defer.inlineCallbacks
def counts_to(session, expected: int, seconds: float = 5.0):
    """Ask ``wamp.session.count`` until it answers ``expected``; False after ``seconds``."""
    deadline = reactor.seconds() + seconds
    while (yield within(session.call("wamp.session.count"))) != expected:
        if reactor.seconds() > deadline:
            return False
        yield task.deferLater(reactor, 0.05, lambda: None)
    return True


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_meta_events_and_testaments_reach_the_other_nodes_once(cluster):
    n1, n2 = cluster("n1"), cluster("n2")
    watcher = yield within(promisifier.connect(n2.url, "realm1"))
    joins, leaves, registers, testaments = [], [], [], []
    yield within(watcher.subscribe("wamp.session.on_join", lambda details: joins.append(details)))
    yield within(watcher.subscribe("wamp.session.on_leave", lambda *args: leaves.append(args)))
    yield within(watcher.subscribe("wamp.registration.on_register", lambda *args: registers.append(args)))
    yield within(watcher.subscribe("com.testament", testaments.append))

    session = yield within(promisifier.connect(n1.url, "realm1"))
    assert (yield until(lambda: len(joins) == 1))
    assert joins[0]["session"] == session.session_id
    registration = yield within(session.register("com.meta.proc", lambda: None))
    assert (yield until(lambda: registers == [(session.session_id, registration.id)]))
    yield within(session.call("wamp.session.add_testament", "com.testament", ["gone"], {}))
    yield within(session.leave())
    assert (yield until(lambda: len(leaves) == 1))
    assert leaves[0][0] == session.session_id
    assert testaments == ["gone"]
    assert len(joins) == 1 and len(registers) == 1
    yield within(watcher.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_session_meta_procedures_answer_for_the_cluster_and_a_killed_nodes_sessions_leave_once(cluster):
    # ... and their testaments are published, once
    n1, n2, n3 = cluster("n1"), cluster("n2"), cluster("n3")
    watcher = yield within(promisifier.connect(n2.url, "realm1"))
    observer = yield within(promisifier.connect(n3.url, "realm1"))
    leaves: list = []
    yield within(watcher.subscribe("wamp.session.on_leave", lambda *args: leaves.append(args)))
    doomed = []
    for _ in range(2):
        doomed.append((yield within(promisifier.connect(n1.url, "realm1"))))
    testaments: list = []
    yield within(watcher.subscribe("com.last.words", testaments.append))
    yield within(doomed[0].call("wamp.session.add_testament", "com.last.words", ["bye"], {}))
    everyone = sorted([watcher.session_id, observer.session_id, *(s.session_id for s in doomed)])

    # a join reaches the cluster's table a moment after WELCOME (it never waits on Redis)
    assert (yield counts_to(watcher, 4))
    assert sorted((yield within(observer.call("wamp.session.list")))) == everyone
    assert (yield within(observer.call("wamp.session.count", ["nobody"]))) == 0
    details = yield within(watcher.call("wamp.session.get", doomed[0].session_id))
    assert (details["session"], details["authrole"]) == (doomed[0].session_id, "anonymous")

    n1.process.kill()
    assert (yield until(lambda: len(leaves) == 2, seconds=10))
    assert sorted(args[0] for args in leaves) == sorted(s.session_id for s in doomed)
    # its testaments, once, published by the node that removed it from the cluster's tables
    assert testaments == ["bye"]
    assert (yield counts_to(observer, 2))
    yield within(watcher.leave())
    yield within(observer.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_sessions_of_other_nodes_can_be_killed(cluster):
    n1, n2 = cluster("n1"), cluster("n2")
    killer = yield within(promisifier.connect(n2.url, "realm1"))
    victims = []
    for node in (n1, n1, n2, n1):
        victims.append((yield within(promisifier.connect(node.url, "realm1"))))
    assert (yield counts_to(killer, 5))

    assert (yield within(killer.call("wamp.session.kill", victims[0].session_id))) is None
    assert (yield until(lambda: not victims[0].is_joined))
    with pytest.raises(ApplicationError) as info:
        yield within(killer.call("wamp.session.kill", 12345))
    assert info.value.error == "wamp.error.no_such_session"
    assert (yield counts_to(killer, 4))

    # by authrole: those here and those on the other node
    killed = yield within(killer.call("wamp.session.kill_by_authrole", "anonymous"))
    assert killed == 3
    assert (yield until(lambda: not any(v.is_joined for v in victims)))
    assert (yield counts_to(killer, 1))
    yield within(killer.leave())
