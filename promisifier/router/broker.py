"""The broker: delivers published events to the sessions subscribed to their topic.

It owns the realm's subscriptions and retained events. An EVENT is built once per
matching subscription and encoded once per serializer; the same bytes go to every
subscriber of that subscription using that serializer.

Advanced profile: pattern-based subscriptions (prefix, wildcard), publisher exclusion,
subscriber black- and whitelisting, publisher identification, event retention,
subscription revocation, payload passthru mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.logger import Logger

from promisifier.router import request_options as opt
from promisifier.router.history import History, StoredEvent, as_record, select
from promisifier.router.matching import UriIndex, covers, iso_8601
from promisifier.router.passthru import PassthruError, passthru_attributes, supports_passthru
from promisifier.router.realm_view import RealmView
from promisifier.wire import LIMIT_EXCEEDED, EncodeError, ErrorURI, fast_random_id, is_valid_uri, random_id
from promisifier.wire.messages import (
    EVENT,
    PUBLISH,
    PUBLISHED,
    SUBSCRIBE,
    SUBSCRIBED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    Message,
)
from promisifier.wire.policies import MATCH_POLICIES

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from promisifier.router.routed import RoutedSession

log = Logger(namespace="promisifier.router.broker")

#: the broker features announced in WELCOME (meta API features are added by the realm)
BROKER_FEATURES = {
    "publisher_identification": True,
    "publisher_exclusion": True,
    "subscriber_blackwhite_listing": True,
    "pattern_based_subscription": True,
    "event_retention": True,
    "subscription_revocation": True,
    "payload_passthru_mode": True,
    "event_history": True,
}

#: the PUBLISH options that say who may receive a publication
FILTER_OPTIONS = ("exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid", "eligible_authrole")


class BrokerMeta(Protocol):
    """What the broker tells the meta API of its realm (:class:`~promisifier.router.meta.MetaApi`)."""

    def subscription_created(self, session: RoutedSession, subscription: RouterSubscription) -> None: ...

    def subscribed(self, session: RoutedSession, subscription: RouterSubscription) -> None: ...

    def unsubscribed(self, session: RoutedSession, subscription: RouterSubscription) -> None: ...

    def subscription_deleted(self, session: RoutedSession, subscription: RouterSubscription) -> None: ...


class BrokerRealm(RealmView, Protocol):
    """The realm as its broker sees it."""

    @property
    def meta(self) -> BrokerMeta: ...


class BrokerLink(Protocol):
    """Where a broker reaches beyond its own router (the other nodes of a cluster): it hands
    over the publications of its sessions and says which topics its subscriptions need."""

    def published(
        self,
        realm: str,
        topic: str,
        payload: list[Any],
        publication_id: int,
        publisher_details: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        """A session of this router published (``options``: the PUBLISH options that say who
        may receive it)."""

    def listen(self, realm: str, uri: str, match: str) -> Deferred[None]:
        """The realm has a new subscription: fires once publications elsewhere reach it."""

    def unlisten(self, realm: str, uri: str, match: str) -> None:
        """The subscription is gone."""

    def retained(self, realm: str) -> Deferred[list[RetainedEvent]] | None:
        """Every retained event of the realm, on every node (None: only this router's)."""

    def subscription_id(self, realm: str, uri: str, match: str) -> int:
        """The id of the subscription to ``uri`` (the same on every node)."""


#: a retained event from elsewhere: (topic, publication id, payload, publisher details,
#: the PUBLISH options that say who may receive it)
RetainedEvent = tuple[str, int, list[Any], dict[str, Any], dict[str, Any]]


class RouterSubscription:
    """A topic URI (or pattern) and the sessions subscribed to it, in subscription order."""

    __slots__ = ("id", "uri", "match", "subscribers", "created", "delivered")

    def __init__(self, subscription_id: int, uri: str, match: str, created: float) -> None:
        self.id = subscription_id
        self.uri = uri
        self.match = match
        # dict as an ordered set: delivery follows subscription order
        self.subscribers: dict[RoutedSession, None] = {}
        self.created = created
        #: EVENTs handed to its subscribers' connections (not dropped for a slow consumer)
        self.delivered = 0

    def details(self) -> dict[str, Any]:
        """The subscription as the meta API describes it."""
        return {"id": self.id, "created": iso_8601(self.created), "uri": self.uri, "match": self.match}


#: the former name (the client has a Subscription handle of its own)
Subscription = RouterSubscription


class _Filter:
    """Who may receive one publication: black- and whitelists by session, authid, authrole."""

    __slots__ = FILTER_OPTIONS

    def __init__(self, options: dict[str, Any]) -> None:
        self.exclude = opt.id_list(options, "exclude")
        self.exclude_authid = opt.str_list(options, "exclude_authid")
        self.exclude_authrole = opt.str_list(options, "exclude_authrole")
        self.eligible = opt.id_list(options, "eligible")
        self.eligible_authid = opt.str_list(options, "eligible_authid")
        self.eligible_authrole = opt.str_list(options, "eligible_authrole")

    @property
    def keeps_history(self) -> bool:
        """Without session-id lists: session ids mean nothing to a later session asking for
        history (pubsub_event_history, Security Aspects), so such events are not kept."""
        return self.exclude is None and self.eligible is None

    def admits(self, session: RoutedSession) -> bool:
        if self.exclude is not None and session.session_id in self.exclude:
            return False
        if self.exclude_authid is not None and session.authid in self.exclude_authid:
            return False
        if self.exclude_authrole is not None and session.authrole in self.exclude_authrole:
            return False
        if self.eligible is not None and session.session_id not in self.eligible:
            return False
        if self.eligible_authid is not None and session.authid not in self.eligible_authid:
            return False
        if self.eligible_authrole is not None and session.authrole not in self.eligible_authrole:
            return False
        return True


class _Retained:
    """One retained event, and who would have received it when it was published."""

    __slots__ = ("publication_id", "payload", "publisher_details", "filter", "excluded")

    def __init__(
        self,
        publication_id: int,
        payload: list[Any],
        publisher_details: dict[str, Any],
        event_filter: _Filter | None,
        excluded: int | None = None,
    ) -> None:
        self.publication_id = publication_id
        self.payload = payload
        self.publisher_details = publisher_details
        self.filter = event_filter
        #: the session id of a publisher that excluded itself (exclude_me)
        self.excluded = excluded

    @property
    def for_everyone(self) -> bool:
        """Published without black/white lists: it replaces every older retained event (the
        publisher's own exclusion does not count: that would make every event limited)."""
        return self.filter is None

    def admits(self, session: RoutedSession) -> bool:
        if self.excluded is not None and session.session_id == self.excluded:
            return False
        return self.filter is None or self.filter.admits(session)


#: retained events of limited distribution (black/white lists, exclude_me) kept per topic
#: besides the last one for everyone; the oldest goes first
MAX_LIMITED_RETAINED = 8


class Broker:
    """Publish/subscribe routing for one realm."""

    def __init__(self, realm: BrokerRealm) -> None:
        self.realm = realm
        self._index: UriIndex[RouterSubscription] = UriIndex()
        self._by_id: dict[int, RouterSubscription] = {}
        self._subscriptions_of: dict[RoutedSession, dict[int, RouterSubscription]] = {}
        #: topic -> its retained events, oldest first (see :meth:`_retain`)
        self._retained: dict[str, list[_Retained]] = {}
        config = realm.config
        #: the event history (None: no history rules in the realm)
        self.history: History | None = (
            History(config.history, realm.clock.seconds, config.max_history_bytes) if config.history else None
        )
        #: events not delivered because they could not be encoded for a subscriber
        self.undeliverable_events = 0
        #: publications routed (clients' PUBLISHes and the router's own, meta events included)
        self.events_published = 0
        #: EVENTs handed to subscribers' connections, over all subscriptions
        self.events_delivered = 0
        #: the other nodes of a cluster (None: this router is alone)
        self.link: BrokerLink | None = None

    # -- state ----------------------------------------------------------------------

    @property
    def subscription_count(self) -> int:
        """Number of subscriptions (topics or patterns with at least one subscriber)."""
        return len(self._by_id)

    @property
    def retained_count(self) -> int:
        """Number of topics with a retained event."""
        return len(self._retained)

    def subscriptions(self) -> list[RouterSubscription]:
        """All subscriptions of the realm."""
        return list(self._by_id.values())

    def subscription(self, subscription_id: int) -> RouterSubscription | None:
        """The subscription with this id, or None."""
        return self._by_id.get(subscription_id)

    def lookup(self, uri: str, match: str = "exact") -> RouterSubscription | None:
        """The subscription of exactly (uri, match), or None."""
        return self._index.get(uri, match)

    def match(self, uri: str) -> list[RouterSubscription]:
        """Every subscription an event on ``uri`` would be delivered to."""
        return self._index.all(uri)

    def subscriptions_by_policy(self) -> dict[str, list[int]]:
        """Subscription ids grouped by match policy (``wamp.subscription.list``)."""
        return {match: [s.id for s in self._index.items(match)] for match in MATCH_POLICIES}

    def attach(self, session: RoutedSession) -> None:
        """Make room for a session that joined the realm."""
        self._subscriptions_of[session] = {}

    def detach(self, session: RoutedSession) -> None:
        """Remove a session that left from every subscription it held."""
        for subscription in self._subscriptions_of.pop(session, {}).values():
            self._remove_subscriber(subscription, session)

    # -- subscriptions ----------------------------------------------------------------

    def on_subscribe(self, session: RoutedSession, message: Message) -> None:
        """SUBSCRIBE: [32, Request|id, Options|dict, Topic|uri]."""
        realm = self.realm
        if realm.authorizer.open or realm.authorized(
            session, "subscribe", message[3], message, self._subscribe, message[2].get("match", "exact")
        ):
            self._subscribe(session, message)

    def _subscribe(self, session: RoutedSession, message: Message) -> None:
        request_id, options, topic = message[1], message[2], message[3]
        try:
            match = opt.choice(options, "match", MATCH_POLICIES, "exact")
            get_retained = opt.flag(options, "get_retained")
            resume = _resume_option(options)
        except opt.OptionError as error:
            session.send_error(SUBSCRIBE, request_id, ErrorURI.INVALID_ARGUMENT, [str(error)])
            return
        if not is_valid_uri(topic, self.realm.strict_uris, match != "exact"):
            session.send_error(SUBSCRIBE, request_id, ErrorURI.INVALID_URI, [f"invalid topic URI {topic!r}"])
            return
        subscription = self._index.get(topic, match)
        if subscription is None and self.link is not None:
            # SUBSCRIBED only once publications from other nodes reach the subscription
            ready = self.link.listen(self.realm.name, topic, match)
            if not ready.called:
                ready.addCallback(lambda _: self._subscribe_when_listening(session, message, topic, match))
                return
        held = self._subscriptions_of[session]
        if len(held) >= self.realm.limits.max_subscriptions_per_session and (
            subscription is None or subscription.id not in held
        ):
            session.send_error(SUBSCRIBE, request_id, LIMIT_EXCEEDED, ["max_subscriptions_per_session reached"])
            return
        created = subscription is None
        if subscription is None:
            subscription = RouterSubscription(
                self._new_subscription_id(topic, match), topic, match, self.realm.clock.seconds()
            )
            self._index.add(topic, match, subscription)
            self._by_id[subscription.id] = subscription
        # A repeated SUBSCRIBE of the same topic answers with the same subscription id.
        already = session in subscription.subscribers
        subscription.subscribers[session] = None
        self._subscriptions_of[session][subscription.id] = subscription
        if resume is not None:
            self._resume(session, request_id, subscription, *resume)
        else:
            session.send([SUBSCRIBED, request_id, subscription.id])
        if not already:
            meta = self.realm.meta
            if created:
                meta.subscription_created(session, subscription)
            meta.subscribed(session, subscription)
        if get_retained:
            everywhere = self.link.retained(self.realm.name) if self.link is not None else None
            if everywhere is None:
                self._send_retained(session, subscription, self._retained_for(subscription))
            else:
                everywhere.addCallback(self._send_retained_from_everywhere, session, subscription)

    def _subscribe_when_listening(self, session: RoutedSession, message: Message, topic: str, match: str) -> None:
        if session in self._subscriptions_of:
            self._subscribe(session, message)
        elif self._index.get(topic, match) is None and self.link is not None:
            self.link.unlisten(self.realm.name, topic, match)  # the session left meanwhile

    def on_unsubscribe(self, session: RoutedSession, message: Message) -> None:
        """UNSUBSCRIBE: [34, Request|id, SUBSCRIBED.Subscription|id]."""
        request_id, subscription_id = message[1], message[2]
        subscription = self._subscriptions_of[session].pop(subscription_id, None)
        if subscription is None:
            session.send_error(
                UNSUBSCRIBE,
                request_id,
                ErrorURI.NO_SUCH_SUBSCRIPTION,
                [f"no subscription {subscription_id} held by this session"],
            )
            return
        session.send([UNSUBSCRIBED, request_id])
        self._remove_subscriber(subscription, session)

    def remove_subscriber(
        self, subscription: RouterSubscription, session: RoutedSession, reason: str | None = None
    ) -> bool:
        """Revoke ``session``'s subscription (``wamp.subscription.remove_subscriber``); False if
        it held none. A subscriber that announced ``subscription_revocation`` is told with
        UNSUBSCRIBED (request 0, the subscription and the reason)."""
        if self._subscriptions_of.get(session, {}).pop(subscription.id, None) is None:
            return False
        if session.has_feature("subscriber", "subscription_revocation"):
            details: dict[str, Any] = {"subscription": subscription.id}
            if reason is not None:
                details["reason"] = reason
            session.send([UNSUBSCRIBED, 0, details])
        self._remove_subscriber(subscription, session)
        return True

    def _remove_subscriber(self, subscription: RouterSubscription, session: RoutedSession) -> None:
        if session not in subscription.subscribers:
            return
        del subscription.subscribers[session]
        meta = self.realm.meta
        meta.unsubscribed(session, subscription)
        if not subscription.subscribers:
            del self._by_id[subscription.id]
            self._index.remove(subscription.uri, subscription.match)
            if self.link is not None:
                self.link.unlisten(self.realm.name, subscription.uri, subscription.match)
            meta.subscription_deleted(session, subscription)

    def _new_subscription_id(self, uri: str, match: str) -> int:
        if self.link is not None:
            wanted = self.link.subscription_id(self.realm.name, uri, match)
            if wanted not in self._by_id:
                return wanted
        while True:
            subscription_id = random_id()
            if subscription_id not in self._by_id:
                return subscription_id

    # -- publications -----------------------------------------------------------------

    def on_publish(self, publisher: RoutedSession, message: Message) -> None:
        """PUBLISH: [16, Request|id, Options|dict, Topic|uri, Arguments|list, ArgumentsKw|dict]."""
        realm = self.realm
        if realm.authorizer.open or realm.authorized(publisher, "publish", message[3], message, self._publish_message):
            self._publish_message(publisher, message)

    def _publish_message(self, publisher: RoutedSession, message: Message) -> None:
        request_id, options, topic = message[1], message[2], message[3]
        acknowledge = options.get("acknowledge") is True
        if not is_valid_uri(topic, self.realm.strict_uris) or topic.startswith("wamp."):
            if acknowledge:
                publisher.send_error(PUBLISH, request_id, ErrorURI.INVALID_URI, [f"invalid topic URI {topic!r}"])
            return
        exclude_me = True
        publisher_details: dict[str, Any] = {}
        event_filter: _Filter | None = None
        retain = False
        disclose = False
        passthru = None
        if options:
            try:
                exclude_me = opt.flag(options, "exclude_me", True)
                retain = opt.flag(options, "retain")
                disclose = opt.flag(options, "disclose_me")
                if any(key in options for key in FILTER_OPTIONS):
                    event_filter = _Filter(options)
                passthru = passthru_attributes(options)
            except (opt.OptionError, PassthruError) as error:
                if acknowledge:
                    publisher.send_error(PUBLISH, request_id, ErrorURI.INVALID_ARGUMENT, [str(error)])
                return
            if passthru is not None and not supports_passthru(publisher, "publisher"):
                publisher.protocol_violation(
                    "PUBLISH with ppt_scheme: the publisher did not announce payload_passthru_mode"
                )
                return
        if disclose or self.realm.authorizer.discloses(publisher, "publisher", topic):
            publisher_details = {
                "publisher": publisher.session_id,
                "publisher_authid": publisher.authid,
                "publisher_authrole": publisher.authrole,
            }
        if passthru is not None:
            # the EVENT's details carry the passthru attributes (payload passthru mode)
            publisher_details = {**publisher_details, **passthru}
        publication_id = fast_random_id()
        payload = message[4:]
        self._publish(
            topic, payload, publication_id, publisher if exclude_me else None, publisher_details, event_filter
        )
        if self.link is not None:
            self.link.published(self.realm.name, topic, payload, publication_id, publisher_details, options)
        if retain:
            excluded = publisher.session_id if exclude_me else None
            self._retain(topic, _Retained(publication_id, payload, publisher_details, event_filter, excluded))
        if acknowledge:
            publisher.send([PUBLISHED, request_id, publication_id])

    def publish(self, topic: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> int:
        """Publish an event from the router itself (meta events, testaments, embedding),
        also to the other nodes of a cluster; returns its id."""
        payload: list[Any] = []
        if args is not None or kwargs:
            payload.append(args if args is not None else [])
            if kwargs:
                payload.append(kwargs)
        publication_id = fast_random_id()
        self._publish(topic, payload, publication_id, None, {}, None)
        if self.link is not None:
            self.link.published(self.realm.name, topic, payload, publication_id, {}, {})
        return publication_id

    def deliver(
        self,
        topic: str,
        payload: list[Any],
        publication_id: int,
        publisher_details: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        """A publication from another node of the cluster: to this router's subscribers
        (``options``: the publisher's PUBLISH options that say who may receive it)."""
        event_filter = _Filter(options) if any(key in options for key in FILTER_OPTIONS) else None
        self._publish(topic, payload, publication_id, None, publisher_details, event_filter)
        if options.get("retain") is True:
            self._retain(topic, _Retained(publication_id, payload, publisher_details, event_filter))

    def _publish(
        self,
        topic: str,
        payload: list[Any],
        publication_id: int,
        excluded: RoutedSession | None,
        publisher_details: dict[str, Any],
        event_filter: _Filter | None,
    ) -> None:
        self.events_published += 1
        history = self.history
        if history is not None and (event_filter is None or event_filter.keeps_history):
            ring = history.ring_for(topic)
            if ring is not None:
                offset = history.record(ring, topic, publication_id, publisher_details, payload, event_filter)
                publisher_details = {**publisher_details, "_offset": offset, "_epoch": history.epoch}
        for subscription in self._index.all(topic):
            details = dict(publisher_details) if publisher_details else {}
            if subscription.match != "exact":
                details["topic"] = topic
            event = [EVENT, subscription.id, publication_id, details, *payload]
            encoded: dict[str, bytes] = {}
            delivered = 0
            for subscriber in subscription.subscribers:
                if subscriber is excluded or (event_filter is not None and not event_filter.admits(subscriber)):
                    continue
                if self._send(subscriber, event, encoded, topic):
                    delivered += 1
            subscription.delivered += delivered
            self.events_delivered += delivered

    def _send(self, subscriber: RoutedSession, event: Message, encoded: dict[str, bytes], topic: str) -> bool:
        """Hand ``event`` to the subscriber's connection; False when it was not (cannot be
        encoded for it, or dropped because the subscriber is a slow consumer)."""
        try:
            # send_shared returns False when it dropped the event (older peers return None)
            return subscriber.connection.send_shared(event, encoded) is not False
        except EncodeError as error:
            self.undeliverable_events += 1
            log.info(
                "event on {topic} not delivered to session {session_id}: {error}",
                topic=topic,
                session_id=subscriber.session_id,
                realm=self.realm.name,
                authid=subscriber.authid,
                peer=subscriber.connection.peer,
                error=error,
            )
            return False

    # -- retention ----------------------------------------------------------------------

    def _retain(self, topic: str, retained: _Retained) -> None:
        """Keep ``retained`` for ``topic``: the events a new subscriber may get, oldest first.

        An event for everyone replaces them all; one of limited distribution is added after
        them (at most :data:`MAX_LIMITED_RETAINED`, besides the last one for everyone)."""
        store = self._retained
        kept = store.pop(topic, None)
        if kept is None or retained.for_everyone:
            kept = [retained]
        else:
            kept.append(retained)
            limited = [i for i, r in enumerate(kept) if not r.for_everyone]
            if len(limited) > MAX_LIMITED_RETAINED:
                del kept[limited[0]]
        store[topic] = kept
        if len(store) > self.realm.config.max_retained_events:
            del store[next(iter(store))]

    def _send_retained_from_everywhere(
        self, events: list[RetainedEvent], session: RoutedSession, subscription: RouterSubscription
    ) -> None:
        if subscription.subscribers.get(session, False) is not None:
            return  # unsubscribed or gone meanwhile
        found: dict[str, list[_Retained]] = {}
        for topic, publication_id, payload, details, options in events:
            if topic == subscription.uri or (subscription.match != "exact" and subscription in self._index.all(topic)):
                event_filter = _Filter(options) if options else None
                found.setdefault(topic, []).append(_Retained(publication_id, payload, details, event_filter))
        self._send_retained(session, subscription, list(found.items()))

    def _retained_for(self, subscription: RouterSubscription) -> list[tuple[str, list[_Retained]]]:
        """This router's retained events that ``subscription`` covers, by topic."""
        if subscription.match == "exact":
            kept = self._retained.get(subscription.uri)
            return [(subscription.uri, kept)] if kept is not None else []
        return [(topic, k) for topic, k in self._retained.items() if subscription in self._index.all(topic)]

    def _send_retained(
        self, session: RoutedSession, subscription: RouterSubscription, candidates: list[tuple[str, list[_Retained]]]
    ) -> None:
        """Send, per topic the subscription covers, the most recent retained event the
        subscriber would have received had it been subscribed when it was published."""
        for topic, kept in candidates:
            retained = next((r for r in reversed(kept) if r.admits(session)), None)
            if retained is None:
                continue
            details = dict(retained.publisher_details)
            details["retained"] = True
            if subscription.match != "exact":
                details["topic"] = topic
            if self._send(
                session, [EVENT, subscription.id, retained.publication_id, details, *retained.payload], {}, topic
            ):
                subscription.delivered += 1
                self.events_delivered += 1

    # -- event history and gap-free resume ---------------------------------------------

    def get_events(
        self, session: RoutedSession, subscription: RouterSubscription, options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """``wamp.subscription.get_events``: the history of ``subscription``, filtered by
        ``options`` and by who asks (allowed to subscribe to it; authid/authrole lists).
        Raises :class:`HistoryError` for a bad option, PermissionError when not allowed."""
        realm = self.realm
        if not realm.authorizer.open:
            match = subscription.match
            if realm.authorizer.authorize(session, "subscribe", subscription.uri, match) is not True:
                raise PermissionError(f"not authorized to subscribe to {subscription.uri!r} ({match})")
        history = self.history
        if history is None:
            select([], options)  # the options are still checked
            return []
        events = history.events_of(lambda topic: covers(subscription.uri, subscription.match, topic))
        events = [e for e in events if e.filter is None or e.filter.admits(session)]
        return [as_record(e, subscription.id, self._stored_details(e, subscription)) for e in select(events, options)]

    def _stored_details(self, event: StoredEvent, subscription: RouterSubscription) -> dict[str, Any]:
        """The details of a stored event as its subscription would have got them."""
        history = self.history
        details = {**event.details, "_offset": event.offset, "_epoch": history.epoch if history else None}
        if subscription.match != "exact":
            details["topic"] = event.topic
        return details

    def _resume(
        self, session: RoutedSession, request_id: int, subscription: RouterSubscription, epoch: str, offset: int
    ) -> None:
        """SUBSCRIBE with ``_resume``: SUBSCRIBED with Details saying whether every event
        after ``offset`` of ``epoch`` can be given, then those events (before any live one).

        SUBSCRIBED.Details: ``_recovered`` (bool), ``_epoch`` and ``_offset`` (the history's
        epoch and the topic's last offset). Only for exact subscriptions of a topic with
        history; otherwise ``_recovered`` is false."""
        history = self.history
        topic = subscription.uri
        missed = None
        if history is not None and subscription.match == "exact":
            missed = history.since(topic, epoch, offset)
        details: dict[str, Any] = {"_recovered": missed is not None}
        if history is not None:
            details["_epoch"] = history.epoch
            details["_offset"] = history.next_offset(topic) - 1
        session.send([SUBSCRIBED, request_id, subscription.id, details])
        for event in missed or ():
            if event.filter is not None and not event.filter.admits(session):
                continue
            event_details = self._stored_details(event, subscription)
            event_details["_recovered"] = True
            if self._send(
                session, [EVENT, subscription.id, event.publication, event_details, *event.payload], {}, topic
            ):
                subscription.delivered += 1
                self.events_delivered += 1


def _resume_option(options: dict[str, Any]) -> tuple[str, int] | None:
    """SUBSCRIBE.Options._resume ``{"epoch": str, "offset": int}``, or None."""
    resume = options.get("_resume")
    if resume is None:
        return None
    if (
        type(resume) is not dict
        or type(resume.get("epoch")) is not str
        or type(resume.get("offset")) is not int
        or resume["offset"] < 0
    ):
        raise opt.OptionError('option "_resume" must be {"epoch": string, "offset": non-negative integer}')
    return resume["epoch"], resume["offset"]
