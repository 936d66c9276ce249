"""The registration and subscription meta API of a cluster: one table, one set of ids and
one stream of meta events for all the nodes.

* **Ids.** A registration's (a subscription's) id is derived from its realm, URI and match
  policy (53 bits of a BLAKE2b hash, see :func:`item_id`): every node computes the same id
  for the same cluster-wide registration without asking anyone, also while Redis is away
  or after it lost its data, and two nodes can never hand out different ids for one
  registration. WAMP lets a router choose these ids freely (router scope); the price is
  that a registration made again after it was deleted gets its former id back. A hash
  collision inside one realm (odds about 2**-53 per pair) is caught by the dealer or the
  broker, which then picks a random id for that node alone.
* **Events.** ``on_register``/``on_unregister`` (``on_subscribe``/``on_unsubscribe``) are
  published by the node of the session, once its change is in the cluster's meta table
  in Redis; the table's answer says whether the change made the first entry of the
  cluster (then ``on_create`` goes first) or removed the last one (then ``on_delete``
  follows). The events of one node go out in the order they happened. When a node is
  lost, the node that reaps it publishes ``on_unregister``/``on_unsubscribe`` for each of
  its sessions' entries and ``on_delete`` for those left empty; a node that was reaped
  (frozen past its time-to-live) and comes back publishes its entries again as new. While
  the link to Redis is down a node publishes the events as a lone router would, to its own
  subscribers.
* **Procedures.** ``wamp.registration.list``/``lookup``/``match`` are answered by the
  node's dealer (which mirrors every node's registrations); ``get`` (whose ``created`` is
  when the first callee anywhere registered), ``list_callees``, ``count_callees`` and every
  ``wamp.subscription`` procedure but ``get_events`` read the meta table (this node's own
  entries come from its own tables, the freshest); ``remove_callee`` and
  ``remove_subscriber`` of another node's session are sent to that node, which revokes it.
  While the link is down they answer for this node alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from promisifier.cluster.bus import Bus, LinkDown, MetaEntry
from promisifier.router.matching import UriIndex, iso_8601
from promisifier.router.meta import MetaError
from promisifier.wire import ErrorURI
from promisifier.wire.policies import MATCH_POLICIES

if TYPE_CHECKING:
    from promisifier.router import Router
    from promisifier.router.broker import Subscription
    from promisifier.router.dealer import Registration
    from promisifier.router.realm import Realm

log = Logger(namespace="promisifier.cluster")

#: what a session's arrival and departure are called, by kind
_ADDED = {"registration": "on_register", "subscription": "on_subscribe"}
_REMOVED = {"registration": "on_unregister", "subscription": "on_unsubscribe"}

_Handler = Callable[[Any, list[Any], dict[str, Any]], Any]


def item_id(kind: str, realm: str, uri: str, match: str) -> int:
    """The id of the registration (``kind`` "registration") or subscription of ``uri`` with
    ``match`` in ``realm``: the same on every node, in [1, 2**53]."""
    digest = hashlib.blake2b(f"{kind}\0{realm}\0{match}\0{uri}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**53) + 1


class _Item:
    """A registration or subscription of the whole cluster, as the meta table has it."""

    __slots__ = ("id", "uri", "match", "invoke", "created", "sessions", "nodes")

    def __init__(self, item_id: int, uri: str, match: str, invoke: str | None = None) -> None:
        self.id = item_id
        self.uri = uri
        self.match = match
        #: a registration's invoke policy
        self.invoke = invoke
        self.created = float("inf")
        self.sessions: list[int] = []
        #: session id -> its node
        self.nodes: dict[int, str] = {}

    def add(self, session_id: int, created: float, node: str) -> None:
        self.sessions.append(session_id)
        self.nodes[session_id] = node
        self.created = min(self.created, created)

    def details(self) -> dict[str, Any]:
        details = {"id": self.id, "created": iso_8601(self.created), "uri": self.uri, "match": self.match}
        if self.invoke is not None:
            details["invoke"] = self.invoke
        return details


class _Table:
    """The subscriptions of a realm on every node, indexed like a broker's."""

    def __init__(self) -> None:
        self.by_id: dict[int, _Item] = {}
        self.index: UriIndex[_Item] = UriIndex()

    def add(self, kind: str, realm: str, uri: str, match: str, session_id: int, created: float, node: str) -> None:
        found = self.index.get(uri, match)
        if found is None:
            found = _Item(item_id(kind, realm, uri, match), uri, match)
            self.index.add(uri, match, found)
            self.by_id[found.id] = found
        found.add(session_id, created, node)

    def get(self, args: list[Any]) -> _Item:
        found = self.by_id.get(args[0]) if args and type(args[0]) is int else None
        if found is None:
            raise MetaError(ErrorURI.NO_SUCH_SUBSCRIPTION, f"no subscription {args[0] if args else None!r}")
        return found


class ClusterMeta:
    """The meta API's cluster-wide part for one node (see the module docstring)."""

    def __init__(self, router: Router, bus: Bus, send: Callable[[str, list[Any]], None]) -> None:
        self.router = router
        self.bus = bus
        #: sends a revocation to another node: (node, [realm, kind, uri, match, session id, reason])
        self._send = send
        #: realm name -> the meta procedures the realm answers alone, replaced while linked
        self._alone: dict[str, dict[str, _Handler]] = {}

    # -- events ---------------------------------------------------------------------------

    def item_event(self, realm: str, topic: str, session_id: int, item: Registration | Subscription) -> None:
        """A meta event of a registration or subscription of a session of this node."""
        kind, _, event = topic[len("wamp.") :].partition(".")
        if not self.bus.up:
            argument = item.details() if event == "on_create" else item.id
            self._publish(realm, topic, session_id, argument)
            return
        if event in ("on_create", "on_delete"):
            return  # the meta table decides (below)
        entry = MetaEntry(kind, realm, item.uri, item.match, self.bus.node, session_id, item.created)
        details = item.details()
        if event == _ADDED[kind]:
            self.bus.meta_add(entry).addCallbacks(
                self._added,
                self._not_changed,
                callbackArgs=(entry, item.id, details),
                errbackArgs=(entry, topic, item.id),
            )
        else:
            self.bus.meta_remove(entry).addCallbacks(
                self._removed, self._not_changed, callbackArgs=(entry, item.id), errbackArgs=(entry, topic, item.id)
            )

    def _added(self, first: int, entry: MetaEntry, registration_id: int, details: dict[str, Any]) -> None:
        if first == 1:
            self._publish(entry.realm, f"wamp.{entry.kind}.on_create", entry.session_id, details)
        self._publish(entry.realm, f"wamp.{entry.kind}.{_ADDED[entry.kind]}", entry.session_id, registration_id)

    def _removed(self, last: int, entry: MetaEntry, registration_id: int) -> None:
        self._publish(entry.realm, f"wamp.{entry.kind}.{_REMOVED[entry.kind]}", entry.session_id, registration_id)
        if last == 1:
            self._publish(entry.realm, f"wamp.{entry.kind}.on_delete", entry.session_id, registration_id)

    def _not_changed(self, failure: Any, entry: MetaEntry, topic: str, registration_id: int) -> None:
        """The table could not be changed (the link went down): the event goes out all the
        same, without on_create or on_delete (the entry is announced again on reconnect)."""
        failure.trap(LinkDown)
        self._publish(entry.realm, topic, entry.session_id, registration_id)

    def _publish(self, realm_name: str, topic: str, session_id: int, argument: Any) -> None:
        realm = self.router.realms.get(realm_name)
        if realm is not None:
            realm.broker.publish(topic, [session_id, argument])

    # -- announcing and reaping ---------------------------------------------------------------

    def entries(self) -> list[MetaEntry]:
        """Every entry of this node's sessions."""
        node = self.bus.node
        found = []
        for realm in self.router.realms.values():
            for registration in realm.dealer.registrations():
                for callee in registration.callees:
                    if not callee.remote:
                        found.append(
                            MetaEntry(
                                "registration",
                                realm.name,
                                registration.uri,
                                registration.match,
                                node,
                                callee.session_id,  # type: ignore[arg-type]
                                registration.created,
                            )
                        )
            for subscription in realm.broker.subscriptions():
                for subscriber in subscription.subscribers:
                    found.append(
                        MetaEntry(
                            "subscription",
                            realm.name,
                            subscription.uri,
                            subscription.match,
                            node,
                            subscriber.session_id,  # type: ignore[arg-type]
                            subscription.created,
                        )
                    )
        return found

    def announce(self) -> None:
        """Put this node's entries (and only those) in the meta table; when the others had
        counted this node as lost, publish them again as new."""
        entries = self.entries()
        self.bus.meta_announce(entries).addCallbacks(self._announced, self._not_announced, callbackArgs=(entries,))

    def _announced(self, answer: tuple[bool, list[int]], entries: list[MetaEntry]) -> None:
        reaped, firsts = answer
        if not reaped:
            return
        for entry, first in zip(entries, firsts):
            entry_id = item_id(entry.kind, entry.realm, entry.uri, entry.match)
            realm = self.router.realms.get(entry.realm)
            if first == 1 and realm is not None:
                self._publish(
                    entry.realm, f"wamp.{entry.kind}.on_create", entry.session_id, self._details(realm, entry)
                )
            self._publish(entry.realm, f"wamp.{entry.kind}.{_ADDED[entry.kind]}", entry.session_id, entry_id)

    @staticmethod
    def _details(realm: Realm, entry: MetaEntry) -> dict[str, Any]:
        found: Any = (realm.dealer if entry.kind == "registration" else realm.broker).lookup(entry.uri, entry.match)
        if found is not None:
            return found.details()  # type: ignore[no-any-return]
        created = iso_8601(entry.created)
        entry_id = item_id(entry.kind, entry.realm, entry.uri, entry.match)
        return {"id": entry_id, "created": created, "uri": entry.uri, "match": entry.match}

    @staticmethod
    def _not_announced(failure: Any) -> None:
        failure.trap(LinkDown)  # announced again at the next reconnect

    def reap(self, node: str) -> None:
        """``node`` was lost: remove its entries and publish their events, once."""
        self.bus.meta_forget(node, reaped=True).addCallbacks(self._reaped, self._not_announced)

    def _reaped(self, removed: list[tuple[MetaEntry, bool]]) -> None:
        for entry, last in removed:
            entry_id = item_id(entry.kind, entry.realm, entry.uri, entry.match)
            self._removed(1 if last else 0, entry, entry_id)

    def leave(self) -> defer.Deferred[Any]:
        """This node leaves the cluster: its entries go, without events."""
        return self.bus.meta_forget(self.bus.node, reaped=False)

    # -- procedures ---------------------------------------------------------------------------

    def link(self, realm: Realm) -> None:
        """Answer the realm's registration and subscription meta procedures for the cluster."""
        procedures = realm.meta.procedures
        alone = self._alone.setdefault(realm.name, {})
        cluster: dict[str, _Handler] = {
            "wamp.registration.get": lambda c, a, k: self._callees(realm, a).addCallback(lambda found: found.details()),
            "wamp.registration.list_callees": lambda c, a, k: self._callees(realm, a).addCallback(
                lambda found: found.sessions
            ),
            "wamp.registration.count_callees": lambda c, a, k: self._callees(realm, a).addCallback(
                lambda found: len(found.sessions)
            ),
            "wamp.subscription.list": lambda c, a, k: self._subscription_list(realm),
            "wamp.subscription.lookup": lambda c, a, k: self._subscription_lookup(realm, c, a, k),
            "wamp.subscription.match": lambda c, a, k: self._subscription_match(realm, c, a, k),
            "wamp.subscription.get": lambda c, a, k: self._subscriptions(realm).addCallback(
                lambda table: table.get(a).details()
            ),
            "wamp.subscription.list_subscribers": lambda c, a, k: self._subscriptions(realm).addCallback(
                lambda table: table.get(a).sessions
            ),
            "wamp.subscription.count_subscribers": lambda c, a, k: self._subscriptions(realm).addCallback(
                lambda table: len(table.get(a).sessions)
            ),
            "wamp.registration.remove_callee": lambda c, a, k: self._revoke(realm, "registration", c, a, k),
            "wamp.subscription.remove_subscriber": lambda c, a, k: self._revoke(realm, "subscription", c, a, k),
        }
        for name, handler in cluster.items():
            alone.setdefault(name, procedures[name])
            procedures[name] = self._or_alone(realm.name, name, handler)

    def unlink(self, realm: Realm) -> None:
        """Give the realm its own meta procedures back."""
        realm.meta.procedures.update(self._alone.pop(realm.name, {}))

    def _or_alone(self, realm_name: str, name: str, handler: _Handler) -> _Handler:
        """``handler`` while the link is up, the realm's own procedure otherwise (also when
        the link goes down during the call)."""

        def answer(caller: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
            alone = self._alone[realm_name][name]
            if not self.bus.up:
                return alone(caller, args, kwargs)

            def down(failure: Any) -> Any:
                failure.trap(LinkDown)
                return alone(caller, args, kwargs)

            return handler(caller, args, kwargs).addErrback(down)

        return answer

    def _callees(self, realm: Realm, args: list[Any]) -> defer.Deferred[_Item]:
        """The registration (which every node's dealer mirrors) with the callees of every
        node, created when its first callee anywhere registered."""
        registration = realm.dealer.registration(args[0]) if args and type(args[0]) is int else None
        if registration is None:
            raise MetaError(ErrorURI.NO_SUCH_REGISTRATION, f"no registration {args[0] if args else None!r}")
        node = self.bus.node

        def merge(entries: list[MetaEntry]) -> _Item:
            found = _Item(registration.id, registration.uri, registration.match, registration.invoke)
            for callee in registration.callees:
                if not callee.remote:
                    found.add(callee.session_id, registration.created, node)  # type: ignore[arg-type]
            for e in entries:
                if e.node != node:
                    found.add(e.session_id, e.created, e.node)
            if not found.sessions:
                found.created = registration.created
            return found

        return self.bus.meta_item("registration", realm.name, registration.uri, registration.match).addCallback(merge)

    def _subscriptions(self, realm: Realm) -> defer.Deferred[_Table]:
        node = self.bus.node

        def merge(entries: list[MetaEntry]) -> _Table:
            table = _Table()
            for subscription in realm.broker.subscriptions():
                for subscriber in subscription.subscribers:
                    table.add(
                        "subscription",
                        realm.name,
                        subscription.uri,
                        subscription.match,
                        subscriber.session_id,  # type: ignore[arg-type]
                        subscription.created,
                        node,
                    )
            for e in entries:
                if e.node != node:
                    table.add(e.kind, e.realm, e.uri, e.match, e.session_id, e.created, e.node)
            return table

        return self.bus.meta_table("subscription", realm.name).addCallback(merge)

    def _subscription_list(self, realm: Realm) -> defer.Deferred[dict[str, list[int]]]:
        return self._subscriptions(realm).addCallback(
            lambda table: {match: [item.id for item in table.index.items(match)] for match in MATCH_POLICIES}
        )

    def _subscription_lookup(
        self, realm: Realm, caller: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> defer.Deferred[int | None]:
        self._alone[realm.name]["wamp.subscription.lookup"](caller, args, kwargs)  # checks the arguments
        options = args[1] if len(args) > 1 and type(args[1]) is dict else kwargs
        uri, match = args[0], options.get("match", "exact")

        def find(table: _Table) -> int | None:
            found = table.index.get(uri, match)
            return found.id if found is not None else None

        return self._subscriptions(realm).addCallback(find)

    def _subscription_match(
        self, realm: Realm, caller: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> defer.Deferred[list[int] | None]:
        self._alone[realm.name]["wamp.subscription.match"](caller, args, kwargs)  # checks the arguments
        uri = args[0]
        return self._subscriptions(realm).addCallback(lambda table: [i.id for i in table.index.all(uri)] or None)

    # -- revocation ---------------------------------------------------------------------------

    def _revoke(
        self, realm: Realm, kind: str, caller: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> defer.Deferred[None]:
        """``remove_callee`` / ``remove_subscriber``: here for a session of this node, else
        by the node of the session."""
        name = "wamp.registration.remove_callee" if kind == "registration" else "wamp.subscription.remove_subscriber"
        session_id = args[1] if len(args) > 1 and type(args[1]) is int else None
        if session_id is None or session_id in realm.sessions:
            return defer.maybeDeferred(self._alone[realm.name][name], caller, args, kwargs)
        reason = args[2] if len(args) > 2 else kwargs.get("reason")
        if reason is not None and type(reason) is not str:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, "reason must be a string")
        if kind == "registration":
            found = self._callees(realm, args)
        else:
            found = self._subscriptions(realm).addCallback(lambda table: table.get(args))

        def revoke(item: _Item) -> None:
            node = item.nodes.get(session_id)
            if node is None or node == self.bus.node:
                raise MetaError(ErrorURI.NO_SUCH_SESSION, f"no session {session_id!r} on {kind} {item.id}")
            self._send(node, [realm.name, kind, item.uri, item.match, session_id, reason])

        return found.addCallback(revoke)

    def revoke_here(
        self, realm_name: str, kind: str, uri: str, match: str, session_id: int, reason: str | None
    ) -> None:
        """Another node asked to revoke a registration or subscription of a session here."""
        realm = self.router.realms.get(realm_name)
        session = realm.sessions.get(session_id) if realm is not None else None
        if realm is None or session is None:
            return  # gone meanwhile
        if kind == "registration":
            registration = realm.dealer.lookup(uri, match)
            if registration is not None:
                realm.dealer.remove_callee(registration, session, reason)
        else:
            subscription = realm.broker.lookup(uri, match)
            if subscription is not None:
                realm.broker.remove_subscriber(subscription, session, reason)
