"""One relay as a node of a cluster: its router, linked to the others through a bus.

The router stays the truth for its own sessions and never waits on the bus for them. What
crosses the bus:

* a publication of a local session, once, on its topic's channel; every node listening
  there delivers it to its own subscribers (the publisher's node delivers locally and
  skips its own copy);
* which topics and patterns the node's subscriptions need (the bus listens to them);
* which procedures the node has callees for (the bus's registration table, changed
  atomically: a ``single`` registration is single cluster-wide). Every node mirrors the
  others' entries in its own dealer, one :class:`~promisifier.cluster.proxies.RemoteCallee`
  per node and realm standing for that node's callees, so routing a call never waits on
  the bus; a call to a remote callee goes to its node's inbox, is routed there to a
  local callee (as a :class:`~promisifier.cluster.proxies.RemoteCaller`), and the
  answers (progressive results, RESULT, ERROR) come back the same way; cancels and
  timeouts (enforced by the caller's node) travel as CANCEL.

The registration and subscription meta API of the whole cluster (one table in Redis,
the same ids on every node, events once) is :mod:`promisifier.cluster.meta`'s.

A call in flight to another node fails with ``wamp.error.canceled`` when that node is
lost, when the call could not be handed to it, or when this node's link goes down (its
answer could be lost): at-most-once, never a hang.

Messages are ``<origin node>\\0`` followed by a msgpack array whose first item says what
it is:

* :data:`EVENT` ``[EVENT, realm, topic, publication id, publisher details, filter options, payload]``
* :data:`CALL` ``[CALL, realm, invocation id, caller id, caller authid, caller authrole,
  procedure, options, payload]`` (the invocation id is the caller node's)
* :data:`ANSWER` ``[ANSWER, realm, invocation id, RESULT or ERROR message]``
* :data:`CANCEL` ``[CANCEL, realm, caller id, invocation id, mode]``
* :data:`KILL` ``[KILL, realm, session ids, reason, message, silently]`` (``wamp.session.kill*``)
* :data:`CHUNK` ``[CHUNK, realm, caller id, invocation id, procedure, progress, payload]``:
  the next chunk of a progressive invocation (a CALL with ``progress``), after its CALL
* :data:`REVOKE` ``[REVOKE, realm, kind, uri, match, session id, reason]``
  (``wamp.registration.remove_callee``, ``wamp.subscription.remove_subscriber``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack
from twisted.internet import defer
from twisted.logger import Logger

from promisifier.cluster.bus import Bus, LinkDown, RegistrationChange, session_id_in_slot
from promisifier.cluster.meta import ClusterMeta, item_id
from promisifier.cluster.proxies import RemoteCallee, RemoteCaller
from promisifier.router.broker import FILTER_OPTIONS, RetainedEvent
from promisifier.router.meta import TESTAMENT_SCOPES, Testament, session_details
from promisifier.wire import ErrorURI, random_id
from promisifier.wire import messages as wamp

if TYPE_CHECKING:
    from promisifier.router import Router
    from promisifier.router.broker import Subscription
    from promisifier.router.dealer import Registration
    from promisifier.router.realm import Realm

log = Logger(namespace="promisifier.cluster")

#: message kinds
EVENT = 1
CALL = 2
ANSWER = 3
CANCEL = 4
KILL = 5
CHUNK = 6
REVOKE = 7

_Key = tuple[str, str, str]


class ClusterNode:
    """Links ``router`` to the other nodes on ``bus`` (see the module docstring)."""

    def __init__(self, router: Router, bus: Bus) -> None:
        self.router = router
        self.bus = bus
        self.node = bus.node
        self._header = bus.node.encode() + b"\0"
        self._packer = msgpack.Packer(use_bin_type=True)
        #: publications of local sessions that reached no other node (link down, or not encodable)
        self.dropped_publications = 0
        #: messages from other nodes that could not be read
        self.bad_messages = 0
        #: (realm, node) -> the callees of that node
        self._callees: dict[tuple[str, str], RemoteCallee] = {}
        #: (realm, node, session id) -> a session of that node with calls in flight here
        self._callers: dict[tuple[str, str, int], RemoteCaller] = {}
        #: procedures this node has callees for, recorded (or to record) in the bus: invoke policy
        self._announced: dict[_Key, str] = {}
        #: (realm, session id) -> its node, as the session table said last
        self._session_nodes: dict[tuple[str, int], str] = {}
        #: sessions of this node that left while the link was down: (realm, session id)
        self._left_while_down: set[tuple[str, int]] = set()
        #: procedures whose last callee here went while the link was down
        self._unregistered_while_down: set[_Key] = set()
        #: registrations waiting for the bus: who else waits for the same answer
        self._registering: dict[_Key, list[defer.Deferred]] = {}
        #: version of the mirrored registration table (None: loading it; changes wait)
        self._table_version: int | None = None
        self._waiting_changes: list[RegistrationChange] = []
        #: the registration and subscription meta API of the whole cluster
        self.meta = ClusterMeta(router, bus, self._send_revoke)

    # -- start and stop --------------------------------------------------------------------

    def start(self) -> None:
        router = self.router
        router.session_id_source = self._new_session_id
        router.on_realm_opened = self._link_realm
        for realm in router.realms.values():
            self._link_realm(realm)
        self.bus.start(self)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Leave the cluster (the router goes on alone)."""
        if self.bus.up:
            try:
                # the meta table's answers to changes on their way come first: their events
                # still go to the other nodes
                yield self.meta.leave()
            except LinkDown:
                pass  # the reaper does it
        router = self.router
        router.session_id_source = random_id
        router.on_realm_opened = None
        for realm in router.realms.values():
            realm.broker.link = None
            realm.dealer.link = None
            realm.meta.link = None
            self.meta.unlink(realm)
        self._drop_remote_sessions("this node left the cluster")
        if self.bus.up:
            try:
                yield self.bus.forget(self.node)
            except LinkDown:
                pass  # the reaper does it
        yield self.bus.stop()

    def _link_realm(self, realm: Realm) -> None:
        realm.broker.link = self
        realm.dealer.link = self
        realm.meta.link = self
        self.meta.link(realm)
        for subscription in realm.broker.subscriptions():
            self.bus.listen(realm.name, subscription.uri, subscription.match)

    def _new_session_id(self) -> int:
        slot = self.bus.slot
        return random_id() if slot is None else session_id_in_slot(slot)

    def status(self) -> dict[str, Any]:
        """The node as ``/health`` and ``/status.json`` show it."""
        return {
            "node": self.node,
            "link": "up" if self.bus.up else "down",
            "nodes": sorted(self.bus.live_nodes),
            "dropped_publications": self.dropped_publications,
            "remote_calls_in_flight": sum(len(callee.calls) for callee in self._callees.values()),
        }

    # -- what the brokers hand over (BrokerLink) -------------------------------------------------

    def published(
        self, realm: str, topic: str, payload: list, publication_id: int, publisher_details: dict, options: dict
    ) -> None:
        filters = {key: options[key] for key in FILTER_OPTIONS if key in options} if options else {}
        retain = 0
        if options and options.get("retain") is True:
            filters["retain"] = True
            found = self.router.realms.get(realm)
            retain = found.config.max_retained_events if found is not None else 0
        try:
            message = self._packer.pack([EVENT, realm, topic, publication_id, publisher_details, filters, payload])
        except (TypeError, ValueError, OverflowError) as error:
            self.dropped_publications += 1
            log.info("publication on {topic} not sent to other nodes: {error}", topic=topic, error=error)
            return
        if not self.bus.publish_topic(realm, topic, self._header + message, retain):
            self.dropped_publications += 1

    def retained(self, realm: str) -> defer.Deferred[list[RetainedEvent]] | None:
        if not self.bus.up:
            return None  # this node's own

        def read(packed: list[bytes]) -> list[RetainedEvent]:
            events = []
            for payload in packed:
                message = self._read(payload)
                if message is not None and message[0] == EVENT and len(message) == 7:
                    _, _, topic, publication_id, details, filters, event_payload = message
                    filters.pop("retain", None)
                    events.append((topic, publication_id, event_payload, details, filters))
            return events

        def failed(failure: Any) -> list[RetainedEvent]:
            log.info("cluster: retained events not read: {error}", error=failure.getErrorMessage())
            return []

        return self.bus.retained(realm).addCallbacks(read, failed)

    def subscription_id(self, realm: str, uri: str, match: str) -> int:
        return item_id("subscription", realm, uri, match)

    def listen(self, realm: str, uri: str, match: str) -> defer.Deferred[None]:
        return self.bus.listen(realm, uri, match)

    def unlisten(self, realm: str, uri: str, match: str) -> None:
        self.bus.unlisten(realm, uri, match)

    # -- what the bus reports (BusHandler) --------------------------------------------------------

    def bus_link_changed(self, up: bool) -> None:
        if up:
            # the table may have changed in any way meanwhile (or been lost): read it again,
            # and record what changed here while the link was down
            self._drop_remote_sessions("the cluster link to Redis was re-established")
            self._load_registrations()
            for realm, uri, match in self._unregistered_while_down:
                if (realm, uri, match) not in self._announced:
                    self.bus.unregister(realm, uri, match)
            self._unregistered_while_down.clear()
            for realm, session_id in self._left_while_down:
                self.bus.session_left(realm, session_id)
            self._left_while_down.clear()
            self.bus_announce()
        else:
            # Answers from other nodes may be lost from now on: fail those calls honestly.
            # The other nodes' registrations stay: calls to them fail at once (canceled).
            why = "the cluster link to Redis is down"
            for callee in list(self._callees.values()):
                for invocation_id in list(callee.calls):
                    callee.fail(invocation_id, why)
            self._drop_remote_callers()
            self._table_version = None
            self._waiting_changes = []

    def bus_announce(self) -> None:
        self.meta.announce()
        for realm in self.router.realms.values():
            sessions = list(realm.sessions.values())
            if self.bus.up:
                pack = self._packer.pack
                self.bus.sessions_joined(
                    realm.name,
                    [(s.session_id, pack([self.node, session_details(s)])) for s in sessions],  # type: ignore[misc]
                )
            for session in sessions:
                testaments = realm.meta.testaments_of(session)
                if testaments:
                    self.testaments(realm.name, session.session_id, testaments)  # type: ignore[arg-type]
        for (realm_name, uri, match), invoke in list(self._announced.items()):
            self.bus.register(realm_name, uri, match, invoke).addCallbacks(
                self._announced_again, self._not_announced, callbackArgs=(realm_name, uri, match)
            )

    def _announced_again(self, conflict: str | None, realm: str, uri: str, match: str) -> None:
        if conflict is not None:
            log.warn(
                "cluster: {uri} ({match}) of realm {realm} is registered on another node with invoke {invoke} "
                "(registered on both while they were apart); calls from other nodes go there",
                uri=uri,
                match=match,
                realm=realm,
                invoke=conflict,
            )

    def _not_announced(self, failure: Any) -> None:
        failure.trap(LinkDown)  # announced again at the next reconnect

    def bus_nodes_changed(self, joined: frozenset[str], lost: frozenset[str]) -> None:
        for node in sorted(joined):
            log.info("cluster node {node} joined", node=node)
        for node in sorted(lost):
            log.warn("cluster node {node} lost (no heartbeat within its time-to-live)", node=node)
            self._drop_remote_sessions(f"cluster node {node} was lost", node)

    def bus_reap(self, nodes: list[str]) -> None:
        for node in nodes:
            log.info("cluster: removing the sessions and registrations of lost node {node}", node=node)
            self.meta.reap(node)
            self.bus.forget(node).addCallbacks(self._sessions_lost, self._not_announced)

    def _sessions_lost(self, sessions: list[tuple[str, bytes, bytes | None]]) -> None:
        """This node reaped a lost node: the testaments and the on_leave of each of its
        sessions, once for the whole cluster."""
        for realm_name, packed, packed_testaments in sessions:
            realm = self.router.realms.get(realm_name)
            try:
                _, details = msgpack.unpackb(packed, raw=False)
                testaments = msgpack.unpackb(packed_testaments, raw=False) if packed_testaments else {}
            except (ValueError, TypeError, msgpack.UnpackException):
                continue
            if realm is None or not isinstance(details, dict) or not isinstance(testaments, dict):
                continue
            for scope in TESTAMENT_SCOPES:
                for topic, args, kwargs in testaments.get(scope, ()):
                    realm.broker.publish(topic, args, kwargs)
            args = [details.get("session"), details.get("authid"), details.get("authrole")]
            realm.broker.publish("wamp.session.on_leave", args)

    def testaments(self, realm: str, session_id: int, testaments: dict[str, list[Testament]]) -> None:
        if self.bus.up:
            kept = {scope: [list(t) for t in found] for scope, found in testaments.items() if found}
            self.bus.testaments(realm, session_id, self._packer.pack(kept) if kept else None)

    # -- sessions (MetaLink) -----------------------------------------------------------------------

    def session_joined(self, realm: str, session_id: int, details: dict[str, Any]) -> None:
        if self.bus.up:
            self.bus.session_joined(realm, session_id, self._packer.pack([self.node, details]))

    def session_left(self, realm: str, session_id: int) -> None:
        if self.bus.up:
            self.bus.session_left(realm, session_id)
        else:
            self._left_while_down.add((realm, session_id))

    def sessions(self, realm: str) -> defer.Deferred[list[dict[str, Any]]]:
        """Every node's sessions of the realm (this node's alone while the link is down)."""

        def here(_: object = None) -> list[dict[str, Any]]:
            found = self.router.realms.get(realm)
            return [session_details(s) for s in found.sessions.values()] if found is not None else []

        if not self.bus.up:
            return defer.succeed(here())

        def read(packed: list[bytes]) -> list[dict[str, Any]]:
            found = []
            self._session_nodes.clear()
            for entry in packed:
                node, details = msgpack.unpackb(entry, raw=False)
                self._session_nodes[(realm, details.get("session"))] = node
                found.append(details)
            return found

        return self.bus.sessions(realm).addCallbacks(read, here)

    def item_event(self, realm: str, topic: str, session_id: int, item: Registration | Subscription) -> None:
        self.meta.item_event(realm, topic, session_id, item)

    def kill(self, realm: str, session_ids: list[int], reason: str, message: str, silently: bool) -> None:
        by_node: dict[str, list[int]] = {}
        for session_id in session_ids:
            node = self._session_nodes.get((realm, session_id))
            if node is not None and node != self.node:
                by_node.setdefault(node, []).append(session_id)
        for node, ids in by_node.items():
            payload = self._header + self._packer.pack([KILL, realm, ids, reason, message, silently])
            self.bus.send(node, payload).addErrback(self._lost)

    def _send_revoke(self, node: str, fields: list) -> None:
        payload = self._header + self._packer.pack([REVOKE, *fields])
        self.bus.send(node, payload).addErrback(self._lost)

    def _on_revoke(self, origin: str, message: list) -> None:
        _, realm_name, kind, uri, match, session_id, reason = message
        self.meta.revoke_here(realm_name, kind, uri, match, session_id, reason)

    def _on_kill(self, origin: str, message: list) -> None:
        _, realm_name, session_ids, reason, text, silently = message
        realm = self.router.realms.get(realm_name)
        if realm is not None:
            realm.meta.kill_here(session_ids, reason, text, silently)

    def _drop_remote_sessions(self, why: str, node: str | None = None) -> None:
        """Forget the callees and callers of ``node`` (every other node if None): their
        calls in flight fail with ``wamp.error.canceled`` saying ``why``."""
        for key, callee in list(self._callees.items()):
            if node is None or key[1] == node:
                del self._callees[key]
                callee.calls.clear()
                callee.streams.clear()
                if callee.realm is not None:
                    callee.realm.dealer.detach(callee, why)
        self._drop_remote_callers(node)
        if node is None:
            self._table_version = None
            self._waiting_changes = []

    def _drop_remote_callers(self, node: str | None = None) -> None:
        """Forget the callers of ``node`` (every other node if None): this node's callees
        get INTERRUPT for their calls."""
        for key, caller in list(self._callers.items()):
            if node is None or key[1] == node:
                del self._callers[key]
                if caller.realm is not None:
                    caller.realm.dealer.detach(caller)  # type: ignore[arg-type]
                    caller.realm = None

    # -- registrations (DealerLink) ----------------------------------------------------------------

    def register(self, realm: str, uri: str, match: str, invoke: str) -> defer.Deferred[str | None]:
        key = (realm, uri, match)
        if key in self._announced or not self.bus.up:
            self._announced[key] = invoke  # recorded in the bus when the link is up again
            return defer.succeed(None)
        answer: defer.Deferred[str | None] = defer.Deferred()
        waiting = self._registering.get(key)
        if waiting is not None:
            waiting.append(answer)
            return answer
        self._registering[key] = [answer]

        def answered(conflict: str | None) -> None:
            if conflict is None:
                self._announced[key] = invoke
            for d in self._registering.pop(key, []):
                d.callback(conflict)

        def failed(failure: Any) -> None:
            log.info("cluster: {uri} registered here only for now: {error}", uri=uri, error=failure.getErrorMessage())
            answered(None)

        self.bus.register(realm, uri, match, invoke).addCallbacks(answered, failed)
        return answer

    def registration_id(self, realm: str, uri: str, match: str) -> int:
        return item_id("registration", realm, uri, match)

    def unregister(self, realm: str, uri: str, match: str) -> None:
        if self._announced.pop((realm, uri, match), None) is None:
            return
        if self.bus.up:
            self.bus.unregister(realm, uri, match)
        else:
            self._unregistered_while_down.add((realm, uri, match))

    def bus_registration_changed(self, change: RegistrationChange) -> None:
        if change.node == self.node:
            return
        if self._table_version is None:
            self._waiting_changes.append(change)
        elif change.version > self._table_version:
            self._table_version = change.version
            self._mirror(change)

    def _load_registrations(self) -> None:
        self._table_version = None
        self._waiting_changes = []
        self.bus.registrations().addCallbacks(self._loaded, self._load_failed)

    def _loaded(self, table: tuple[int, list[RegistrationChange]]) -> None:
        version, entries = table
        if not self.bus.up:
            return
        for entry in entries:
            if entry.node != self.node:
                self._mirror(entry)
        self._table_version = version
        waiting, self._waiting_changes = self._waiting_changes, []
        for change in waiting:
            self.bus_registration_changed(change)

    def _load_failed(self, failure: Any) -> None:
        log.warn("cluster: could not read the registration table: {error}", error=failure.getErrorMessage())
        if self.bus.up:
            self.router.clock.callLater(1.0, self._load_registrations)

    def _mirror(self, change: RegistrationChange) -> None:
        realm = self.router.realms.get(change.realm)
        if realm is None:
            return
        key = (change.realm, change.node)
        callee = self._callees.get(key)
        if change.added:
            if callee is None:
                callee = self._callees[key] = RemoteCallee(self, realm, change.node)
                realm.dealer.attach(callee)  # type: ignore[arg-type]
            if not realm.dealer.link_callee(callee, change.uri, change.match, change.invoke):  # type: ignore[arg-type]
                log.warn(
                    "cluster: {uri} ({match}, invoke {invoke}) of node {node} conflicts with the registration here",
                    uri=change.uri,
                    match=change.match,
                    invoke=change.invoke,
                    node=change.node,
                )
        elif callee is not None:
            realm.dealer.unlink_callee(callee, change.uri, change.match)  # type: ignore[arg-type]

    # -- calls between nodes ----------------------------------------------------------------------

    def forward_call(
        self,
        callee: RemoteCallee,
        invocation_id: int,
        caller_id: int,
        authid: str | None,
        authrole: str | None,
        procedure: str,
        options: dict,
        payload: list,
    ) -> bool:
        """Send a call to ``callee``'s node; False if it cannot be encoded. A call that
        cannot be handed to the node fails (soon, not from within the dealer)."""
        realm = callee.realm.name if callee.realm is not None else ""
        try:
            message = self._packer.pack(
                [CALL, realm, invocation_id, caller_id, authid, authrole, procedure, options, payload]
            )
        except (TypeError, ValueError, OverflowError):
            return False
        node = callee.node
        clock = self.router.clock

        def handed(received: bool) -> None:
            if received:
                callee.handed(invocation_id)
            else:
                clock.callLater(0, callee.not_handed, invocation_id, f"cluster node {node} is gone")

        def failed(failure: Any) -> None:
            clock.callLater(
                0, callee.fail, invocation_id, f"cannot reach cluster node {node}: {failure.getErrorMessage()}"
            )

        self.bus.send(node, self._header + message).addCallbacks(handed, failed)
        return True

    def forward_cancel(self, callee: RemoteCallee, caller_id: int, invocation_id: int, mode: str) -> None:
        realm = callee.realm.name if callee.realm is not None else ""
        message = self._packer.pack([CANCEL, realm, caller_id, invocation_id, mode])
        self.bus.send(callee.node, self._header + message).addErrback(self._lost)

    def forward_chunk(
        self, callee: RemoteCallee, caller_id: int, invocation_id: int, procedure: str, progress: bool, payload: list
    ) -> bool:
        """Send the next chunk of a progressive invocation after its CALL; False if it
        cannot be encoded."""
        realm = callee.realm.name if callee.realm is not None else ""
        try:
            message = self._packer.pack([CHUNK, realm, caller_id, invocation_id, procedure, progress, payload])
        except (TypeError, ValueError, OverflowError):
            return False
        self.bus.send(callee.node, self._header + message).addErrback(self._lost)
        return True

    def forward_answer(self, caller: RemoteCaller, message: list) -> None:
        realm = caller.realm
        if realm is None:
            return
        invocation_id = message[2] if message[0] == wamp.ERROR else message[1]
        try:
            packed = self._packer.pack([ANSWER, realm.name, invocation_id, message])
        except (TypeError, ValueError, OverflowError):
            error = [wamp.ERROR, wamp.CALL, invocation_id, {}, ErrorURI.INVALID_ARGUMENT, ["answer cannot be encoded"]]
            packed = self._packer.pack([ANSWER, realm.name, invocation_id, error])
        self.bus.send(caller.node, self._header + packed).addErrback(self._lost)
        final = message[0] == wamp.ERROR or not (type(message[2]) is dict and message[2].get("progress") is True)
        if final:
            caller.streams.discard(invocation_id)
        if final and realm.dealer.pending_calls_of(caller) == 0:  # type: ignore[arg-type]
            self._callers.pop((realm.name, caller.node, caller.session_id), None)
            realm.dealer.detach(caller)  # type: ignore[arg-type]
            caller.realm = None

    @staticmethod
    def _lost(failure: Any) -> None:
        """A message to a node that is gone or unreachable: that node's side fails the call."""
        failure.trap(LinkDown)

    def _on_call(self, origin: str, message: list) -> None:
        _, realm_name, invocation_id, caller_id, authid, authrole, procedure, options, payload = message
        realm = self.router.realms.get(realm_name)
        if realm is None:  # the nodes' configurations differ
            error = [
                wamp.ERROR,
                wamp.CALL,
                invocation_id,
                {},
                ErrorURI.NO_SUCH_REALM,
                [f"no realm {realm_name!r} here"],
            ]
            answer = self._header + self._packer.pack([ANSWER, realm_name, invocation_id, error])
            self.bus.send(origin, answer).addErrback(self._lost)
            return
        key = (realm_name, origin, caller_id)
        caller = self._callers.get(key)
        if caller is None:
            caller = self._callers[key] = RemoteCaller(self, realm, origin, caller_id, authid, authrole)
            realm.dealer.attach(caller)  # type: ignore[arg-type]
        if options.get("progress") is True:
            caller.streams.add(invocation_id)
        realm.dealer.route_call(caller, [wamp.CALL, invocation_id, options, procedure, *payload])  # type: ignore[arg-type]

    def _on_chunk(self, origin: str, message: list) -> None:
        _, realm_name, caller_id, invocation_id, procedure, progress, payload = message
        caller = self._callers.get((realm_name, origin, caller_id))
        if caller is None or caller.realm is None or invocation_id not in caller.streams:
            return  # the invocation ended here meanwhile: its remaining chunks are dropped
        if progress is not True:
            caller.streams.discard(invocation_id)
        options = {"progress": True} if progress is True else {}
        caller.realm.dealer.route_call(caller, [wamp.CALL, invocation_id, options, procedure, *payload])  # type: ignore[arg-type]

    def _on_answer(self, origin: str, message: list) -> None:
        _, realm_name, invocation_id, answer = message
        callee = self._callees.get((realm_name, origin))
        if callee is not None and type(answer) is list and len(answer) >= 3:
            callee.answered(invocation_id, answer)

    def _on_cancel(self, origin: str, message: list) -> None:
        _, realm_name, caller_id, invocation_id, mode = message
        caller = self._callers.get((realm_name, origin, caller_id))
        if caller is not None and caller.realm is not None:
            caller.realm.dealer.on_cancel(caller, [wamp.CANCEL, invocation_id, {"mode": mode}])  # type: ignore[arg-type]

    def bus_topic_message(self, payload: bytes) -> None:
        if payload.startswith(self._header):
            return  # this node's own publication: delivered locally already
        message = self._read(payload)
        if message is None or message[0] != EVENT or len(message) != 7:
            return
        _, realm_name, topic, publication_id, publisher_details, filters, event_payload = message
        realm = self.router.realms.get(realm_name)
        if realm is not None:
            realm.broker.deliver(topic, event_payload, publication_id, publisher_details, filters)

    def bus_node_message(self, payload: bytes) -> None:
        message = self._read(payload)
        if message is None:
            return
        origin = payload[: payload.index(b"\0")].decode()
        handler = self._handlers.get((message[0], len(message)))
        if handler is None:
            self.bad_messages += 1
            log.warn("cluster: unknown message from node {node}", node=origin)
            return
        handler(self, origin, message)

    _handlers = {
        (CALL, 9): _on_call,
        (ANSWER, 4): _on_answer,
        (CANCEL, 5): _on_cancel,
        (KILL, 6): _on_kill,
        (CHUNK, 7): _on_chunk,
        (REVOKE, 7): _on_revoke,
    }

    def _read(self, payload: bytes) -> list | None:
        _, separator, body = payload.partition(b"\0")
        try:
            message = msgpack.unpackb(body, raw=False, strict_map_key=False) if separator else None
        except (ValueError, msgpack.UnpackException):
            message = None
        if not isinstance(message, list) or not message:
            self.bad_messages += 1
            log.warn("cluster: unreadable message from another node ({size} bytes)", size=len(payload))
            return None
        return message
