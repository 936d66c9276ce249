"""The bus's meta tables against a real redis-server: which sessions of which node hold
which registration or subscription; the first and the last entry of an item decided once
for the cluster; a lost node's entries removed by its reaper (and the node told so when it
announces itself again); Redis left as it was found."""

from __future__ import annotations

import pytest
import pytest_twisted

from promisifier.cluster.bus import MetaEntry
from promisifier.cluster.meta import item_id
from tests.support import within
from tests.test_cluster_bus import buses  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def entry(node: str, session_id: int, uri: str = "com.x", kind: str = "subscription", match: str = "exact"):
    return MetaEntry(kind, "realm1", uri, match, node, session_id, 1700000000.25)


def test_item_ids_are_the_same_everywhere_and_differ_by_kind_realm_uri_and_match():
    first = item_id("registration", "realm1", "com.x", "exact")
    assert first == item_id("registration", "realm1", "com.x", "exact")
    others = {
        item_id("subscription", "realm1", "com.x", "exact"),
        item_id("registration", "realm2", "com.x", "exact"),
        item_id("registration", "realm1", "com.y", "exact"),
        item_id("registration", "realm1", "com.x", "prefix"),
    }
    assert first not in others and len(others) == 4
    assert all(1 <= i <= 2**53 for i in others | {first})


@pytest_twisted.inlineCallbacks
def test_first_and_last_entries_are_decided_once_for_the_cluster(buses, redis_server):  # noqa: F811
    a, _ = yield buses("a")
    b, _ = yield buses("b")
    baseline = redis_server.command("DBSIZE")
    assert (yield within(a.meta_add(entry("a", 1)))) == 1
    assert (yield within(b.meta_add(entry("b", 2)))) == 0
    assert (yield within(b.meta_add(entry("b", 2)))) == -1
    assert (yield within(a.meta_add(entry("a", 3, uri="com.", match="prefix")))) == 1
    assert (yield within(a.meta_add(entry("a", 4, kind="registration")))) == 1

    table = yield within(b.meta_table("subscription", "realm1"))
    found = sorted((e.uri, e.match, e.node, e.session_id) for e in table)
    assert found == [("com.", "prefix", "a", 3), ("com.x", "exact", "a", 1), ("com.x", "exact", "b", 2)]
    assert {e.created for e in table} == {1700000000.25}
    item = yield within(a.meta_item("registration", "realm1", "com.x", "exact"))
    assert [(e.node, e.session_id) for e in item] == [("a", 4)]

    assert (yield within(a.meta_remove(entry("a", 1)))) == 0
    assert (yield within(a.meta_remove(entry("a", 1)))) == -1
    assert (yield within(b.meta_remove(entry("b", 2)))) == 1
    assert (yield within(a.meta_remove(entry("a", 3, uri="com.", match="prefix")))) == 1
    assert (yield within(a.meta_remove(entry("a", 4, kind="registration")))) == 1
    assert (yield within(b.meta_table("subscription", "realm1"))) == []
    assert redis_server.command("DBSIZE") == baseline


@pytest_twisted.inlineCallbacks
def test_a_lost_nodes_entries_go_once_and_it_is_told_when_it_comes_back(buses, redis_server):  # noqa: F811
    a, _ = yield buses("a")
    b, _ = yield buses("b")
    baseline = redis_server.command("DBSIZE")
    yield within(a.meta_add(entry("a", 1)))
    yield within(a.meta_add(entry("a", 2)))
    yield within(b.meta_add(entry("b", 3)))
    yield within(a.meta_add(entry("a", 1, uri="com.only.a")))

    removed = yield within(b.meta_forget("a", reaped=True))
    assert sorted((e.uri, e.session_id, last) for e, last in removed) == [
        ("com.only.a", 1, True),
        ("com.x", 1, False),
        ("com.x", 2, False),
    ]
    assert (yield within(b.meta_forget("a", reaped=True))) == []
    table = yield within(b.meta_table("subscription", "realm1"))
    assert [(e.node, e.session_id) for e in table] == [("b", 3)]

    # a comes back with what it has now: told it had been reaped, its entries are new again
    reaped, firsts = yield within(a.meta_announce([entry("a", 1, uri="com.only.a"), entry("a", 2)]))
    assert reaped is True and firsts == [1, 0]
    reaped, firsts = yield within(a.meta_announce([entry("a", 2)]))
    assert reaped is False and firsts == [0]
    table = yield within(b.meta_table("subscription", "realm1"))
    assert sorted((e.uri, e.node, e.session_id) for e in table) == [("com.x", "a", 2), ("com.x", "b", 3)]

    # leaving cleanly leaves no mark
    yield within(a.meta_forget("a", reaped=False))
    yield within(b.meta_forget("b", reaped=False))
    assert redis_server.command("DBSIZE") == baseline
