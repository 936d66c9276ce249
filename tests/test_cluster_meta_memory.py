"""The cluster's registration and subscription meta events, driven in memory
(tests/memory_router.py): :class:`~promisifier.cluster.meta.ClusterMeta` over a bus of the
test's own whose meta-table answers the test gives. ``on_create`` and ``on_delete`` follow
the table's answer, not the node's own view; while the link is down the node publishes as a
lone router would. The real bus, over Redis, is tested in tests/test_cluster_meta*.py."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from promisifier.cluster.bus import LinkDown, MetaEntry
from promisifier.cluster.meta import ClusterMeta
from tests.memory_router import MemoryRouter

TOPICS = [f"wamp.registration.{event}" for event in ("on_create", "on_register", "on_unregister", "on_delete")]


class MetaBus:
    """The meta-table part of a bus: each change waits for the test's answer."""

    node = "here"

    def __init__(self) -> None:
        self.up = True
        self.changes: list[tuple[str, MetaEntry, defer.Deferred]] = []

    def meta_add(self, entry: MetaEntry) -> defer.Deferred:
        return self._change("add", entry)

    def meta_remove(self, entry: MetaEntry) -> defer.Deferred:
        return self._change("remove", entry)

    def _change(self, kind: str, entry: MetaEntry) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.changes.append((kind, entry, d))
        return d

    def of(self, uri: str) -> list[tuple[str, MetaEntry, defer.Deferred]]:
        return [change for change in self.changes if change[1].uri == uri]


class Link:
    """The realm's meta link: sessions ignored, registration and subscription events to the
    cluster's meta API."""

    def __init__(self, meta: ClusterMeta) -> None:
        self.meta = meta

    def session_joined(self, *args: Any) -> None:
        pass

    def session_left(self, *args: Any) -> None:
        pass

    def item_event(self, *args: Any) -> None:
        self.meta.item_event(*args)


@pytest.fixture
def memory():
    memory = MemoryRouter()
    memory.bus = MetaBus()
    realm = memory.realm()
    memory.watcher = memory.join()
    # before the link: these subscriptions are the router's own business
    memory.names = {memory.watcher.subscribe(topic): topic[len("wamp.registration.") :] for topic in TOPICS}
    realm.meta.link = Link(ClusterMeta(memory.router, memory.bus, lambda node, fields: None))
    yield memory
    realm.meta.link = None
    memory.assert_idle()


def seen(memory) -> list[tuple[str, int]]:
    """The meta events the watcher got, as (event, session id)."""
    return [(memory.names[event[1]], event[4][0]) for event in memory.watcher.events()]


def test_on_create_and_on_delete_follow_the_tables_answer(memory):
    bus = memory.bus
    first, second = memory.join(), memory.join()
    first.register("com.p", invoke="roundrobin")
    second.register("com.p", invoke="roundrobin")
    assert seen(memory) == [], "nothing goes out before the table answered"
    [(_, entry, added_first), (_, _, added_second)] = bus.of("com.p")
    assert (entry.kind, entry.node, entry.session_id) == ("registration", "here", first.session_id)
    added_first.callback(0)  # another node's session holds it already: no on_create
    added_second.callback(0)
    first.leave()
    second.leave()
    removed_first, removed_second = (change[2] for change in bus.of("com.p")[2:])
    removed_first.callback(0)
    removed_second.callback(1)  # the last in the cluster
    assert seen(memory) == [
        ("on_register", first.session_id),
        ("on_register", second.session_id),
        ("on_unregister", first.session_id),
        ("on_unregister", second.session_id),
        ("on_delete", second.session_id),
    ]


def test_the_first_entry_of_the_cluster_is_created_and_a_failed_change_still_publishes(memory):
    bus = memory.bus
    callee = memory.join()
    callee.register("com.q")
    bus.of("com.q")[0][2].callback(1)
    callee.register("com.r")
    bus.of("com.r")[0][2].errback(LinkDown("gone"))
    assert seen(memory) == [
        ("on_create", callee.session_id),
        ("on_register", callee.session_id),
        ("on_register", callee.session_id),  # com.r: the table could not say whether it is new
    ]
    callee.leave()
    for _, _, d in bus.changes[2:]:
        d.callback(1)


def test_while_the_link_is_down_the_node_publishes_as_a_lone_router(memory):
    memory.bus.up = False
    callee = memory.join()
    callee.register("com.s")
    callee.leave()
    assert memory.bus.changes == []
    assert seen(memory) == [
        ("on_create", callee.session_id),
        ("on_register", callee.session_id),
        ("on_unregister", callee.session_id),
        ("on_delete", callee.session_id),
    ]
