"""The bus: what one node of a cluster needs from the medium that joins it to the others.

The cluster layer (:mod:`promisifier.cluster.node`) talks only to this interface; the
router talks only to the cluster layer. :class:`~promisifier.cluster.redis_bus.RedisBus`
implements it on Redis 7; another engine (NATS, Redis Cluster's sharded pub/sub) would be
another implementation of the same few operations:

* **link**: whether the node is connected (:attr:`Bus.up`); every operation fails fast
  with :class:`LinkDown` (or answers "not handed over") while it is not, never waits.
* **membership**: heartbeats with a time-to-live; the handler hears which nodes joined
  and which were lost, and exactly one live node is asked to clean up after a lost one.
* **topics**: a publication is handed to the bus once, whatever the number of nodes and
  subscribers; a node listens to the exact topics and patterns its own sessions need.
  Several listens matching one publication still deliver it to the node once.
* **node messages**: a payload sent to one named node (calls and their answers).
* **sessions**: a table of every node's sessions (for the meta API).
* **registrations**: which nodes have callees for which procedure (and with which invoke
  policy), changed atomically: a ``single`` registration on one node keeps every other
  node from registering the procedure; every node hears of every change.
* **meta tables**: which sessions of which node hold which registration or subscription
  (for the registration and subscription meta API and its events), changed one session
  at a time; a change answers whether it made the first or removed the last entry of the
  whole cluster, so that ``on_create`` and ``on_delete`` fire once.
* **session id slot**: a number unique among the live nodes, so that session ids stay
  unique cluster-wide (:func:`session_id_in_slot`).
* **figures**: a node's status figures, kept for a while where other nodes can read them
  (the workers of one relay show one status page).

Payloads are bytes; what they mean is the cluster layer's business.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred

#: how many nodes can hold a session id slot at once
SLOTS = 1024
_SLOT_BITS = 10
#: session ids are in [1, 2**53]: the random part takes the bits above the slot
_RANDOM_LIMIT = 2 ** (53 - _SLOT_BITS) - 1


def session_id_in_slot(slot: int) -> int:
    """A random session id whose low bits are ``slot``: two nodes with different slots
    never hand out the same id."""
    return (random.randint(1, _RANDOM_LIMIT) << _SLOT_BITS) | slot


@dataclass(frozen=True)
class RegistrationChange:
    """A node has (``added``) or no longer has callees for a procedure; ``version`` orders
    the changes of the whole table."""

    version: int
    realm: str
    uri: str
    match: str
    invoke: str
    node: str
    added: bool


#: what the meta tables hold: registrations (their callees) and subscriptions (their subscribers)
META_KINDS = ("registration", "subscription")


@dataclass(frozen=True)
class MetaEntry:
    """A session of ``node`` holds the registration (``kind`` "registration") or the
    subscription of ``uri`` with ``match`` since ``created`` (seconds since the epoch)."""

    kind: str
    realm: str
    uri: str
    match: str
    node: str
    session_id: int
    created: float = 0.0


class LinkDown(Exception):
    """The bus is not connected (or did not answer in time); nothing was done."""


class BusHandler(Protocol):
    """What the bus tells the cluster layer. Every method is called from the reactor."""

    def bus_link_changed(self, up: bool) -> None:
        """The link went up or down. Node messages may have been lost while it was down."""

    def bus_announce(self) -> None:
        """The bus does not know this node (first heartbeat, the server lost its data, or
        the others counted the node as gone): announce everything again."""

    def bus_nodes_changed(self, joined: frozenset[str], lost: frozenset[str]) -> None:
        """Other nodes joined or were lost (no heartbeat within the time-to-live)."""

    def bus_reap(self, nodes: list[str]) -> None:
        """This node, and no other, cleans up the cluster tables after ``nodes``."""

    def bus_topic_message(self, payload: bytes) -> None:
        """A publication another node handed to the bus, on a topic this node listens to."""

    def bus_node_message(self, payload: bytes) -> None:
        """A payload another node sent to this one."""

    def bus_registration_changed(self, change: RegistrationChange) -> None:
        """Another node (or a reaper on its behalf) changed the registration table."""


class Bus(ABC):
    """One node's connection to the others (see the module docstring)."""

    #: this node's name
    node: str

    @property
    @abstractmethod
    def up(self) -> bool:
        """Connected: operations are attempted (they may still fail)."""

    @property
    @abstractmethod
    def slot(self) -> int | None:
        """This node's session id slot (None until the bus gave it one)."""

    @property
    @abstractmethod
    def live_nodes(self) -> frozenset[str]:
        """The other nodes alive at the last heartbeat."""

    @abstractmethod
    def start(self, handler: BusHandler) -> None:
        """Connect (and keep reconnecting); report to ``handler``."""

    @abstractmethod
    def stop(self) -> Deferred[None]:
        """Leave the cluster (the others see this node go at once) and disconnect."""

    @abstractmethod
    def publish_topic(self, realm: str, topic: str, payload: bytes, retain: int = 0) -> bool:
        """Hand a publication on ``topic`` to the bus, for every node listening to it;
        with ``retain``, also keep it as the topic's retained event (the realm keeps those
        of its ``retain`` most recent topics). False: the link is down, the publication
        reaches no other node."""

    @abstractmethod
    def retained(self, realm: str) -> Deferred[list[bytes]]:
        """The retained publications of the realm; fails with :class:`LinkDown`."""

    @abstractmethod
    def listen(self, realm: str, uri: str, match: str) -> Deferred[None]:
        """Receive the publications an exact, prefix or wildcard subscription to ``uri``
        needs; kept across reconnects until :meth:`unlisten`. Fires once the bus has
        acknowledged it (at once while the link is down: it is set up on reconnect)."""

    @abstractmethod
    def unlisten(self, realm: str, uri: str, match: str) -> None:
        """Stop receiving what :meth:`listen` asked for."""

    @abstractmethod
    def register(self, realm: str, uri: str, match: str, invoke: str) -> Deferred[str | None]:
        """Record that this node has callees for ``uri``: fires with None, or with the invoke
        policy of the registration another node holds when this one conflicts with it
        (either is ``single``, or the policies differ). Fails with :class:`LinkDown`."""

    @abstractmethod
    def unregister(self, realm: str, uri: str, match: str) -> None:
        """This node no longer has callees for ``uri`` (best effort: a lost node's entries
        are removed by the reaper)."""

    @abstractmethod
    def registrations(self) -> Deferred[tuple[int, list[RegistrationChange]]]:
        """The whole table (version, entries as changes with ``added``); fails with
        :class:`LinkDown`."""

    @abstractmethod
    def forget(self, node: str) -> Deferred[list[tuple[str, bytes, bytes | None]]]:
        """Remove a lost node's registrations and sessions (the reaper does this once);
        fires with the sessions removed, as (realm, details, testaments or None)."""

    @abstractmethod
    def testaments(self, realm: str, session_id: int, testaments: bytes | None) -> None:
        """Keep (or with None, drop) a session's testaments, for the reaper (best effort)."""

    @abstractmethod
    def session_joined(self, realm: str, session_id: int, details: bytes) -> None:
        """Record a session of this node in the cluster's session table (best effort)."""

    def sessions_joined(self, realm: str, sessions: list[tuple[int, bytes]]) -> None:
        """Record many sessions of this node at once, as (session id, details): a node that
        announces itself again after a reconnect (best effort; a bus may do it in bulk)."""
        for session_id, details in sessions:
            self.session_joined(realm, session_id, details)

    @abstractmethod
    def session_left(self, realm: str, session_id: int) -> None:
        """Remove a session of this node from the table (best effort)."""

    @abstractmethod
    def sessions(self, realm: str) -> Deferred[list[bytes]]:
        """The details of every session of the realm, on every node; fails with
        :class:`LinkDown`."""

    @abstractmethod
    def send(self, node: str, payload: bytes) -> Deferred[bool]:
        """Send ``payload`` to ``node``: True once handed to it, False if that node is not
        listening (gone); fails with :class:`LinkDown`."""

    @abstractmethod
    def share_figures(self, payload: bytes, ttl: float) -> None:
        """Keep this node's status figures for ``ttl`` seconds where the others can read
        them (best effort)."""

    @abstractmethod
    def figures(self, nodes: list[str]) -> Deferred[dict[str, bytes]]:
        """The figures ``nodes`` shared and that have not expired, by node; fails with
        :class:`LinkDown`."""

    # -- meta tables ---------------------------------------------------------------------

    @abstractmethod
    def meta_add(self, entry: MetaEntry) -> Deferred[int]:
        """Record an entry of this node: fires with 1 when it is the first of its
        registration or subscription in the cluster, 0 when there were others, -1 when it
        was there already; fails with :class:`LinkDown`."""

    @abstractmethod
    def meta_remove(self, entry: MetaEntry) -> Deferred[int]:
        """Remove an entry of this node: fires with 1 when it was the last of its
        registration or subscription in the cluster, 0 when others are left, -1 when it
        was not there; fails with :class:`LinkDown`."""

    @abstractmethod
    def meta_announce(self, entries: list[MetaEntry]) -> Deferred[tuple[bool, list[int]]]:
        """Replace every entry of this node with ``entries``: fires with (whether the node
        had been reaped since it last announced, :meth:`meta_add`'s answer for each entry)."""

    @abstractmethod
    def meta_forget(self, node: str, reaped: bool) -> Deferred[list[tuple[MetaEntry, bool]]]:
        """Remove every entry of ``node`` (``reaped``: it was lost, and is told so when it
        announces itself again); fires with the entries removed, each with whether it was
        the last of its registration or subscription."""

    @abstractmethod
    def meta_table(self, kind: str, realm: str) -> Deferred[list[MetaEntry]]:
        """Every entry of one kind in the realm; fails with :class:`LinkDown`."""

    @abstractmethod
    def meta_item(self, kind: str, realm: str, uri: str, match: str) -> Deferred[list[MetaEntry]]:
        """The entries of one registration or subscription; fails with :class:`LinkDown`."""
