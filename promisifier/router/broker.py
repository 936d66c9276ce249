"""The broker: delivers published events to the sessions subscribed to their topic.

It owns the realm's subscriptions. An EVENT is built once per publication and encoded
once per serializer; the same bytes go to every subscriber using that serializer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from promisifier.wire import EncodeError, ErrorURI, is_valid_uri, random_id
from promisifier.wire.messages import (
    EVENT,
    PUBLISH,
    PUBLISHED,
    SUBSCRIBE,
    SUBSCRIBED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
)

if TYPE_CHECKING:
    from promisifier.router.realm import Realm
    from promisifier.router.session import RouterSession

log = Logger(namespace="promisifier.router.broker")


class Subscription:
    """A topic URI and the sessions subscribed to it (in subscription order)."""

    __slots__ = ("id", "uri", "match", "subscribers", "created")

    def __init__(self, subscription_id: int, uri: str, match: str, created: float) -> None:
        self.id = subscription_id
        self.uri = uri
        self.match = match
        # dict as an ordered set: delivery follows subscription order
        self.subscribers: dict[RouterSession, None] = {}
        self.created = created


class Broker:
    """Publish/subscribe routing for one realm."""

    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self._exact: dict[str, Subscription] = {}
        self._by_id: dict[int, Subscription] = {}
        self._subscriptions_of: dict[RouterSession, dict[int, Subscription]] = {}
        #: events not delivered because they could not be encoded for a subscriber
        self.undeliverable_events = 0

    # -- state ----------------------------------------------------------------------

    @property
    def subscription_count(self) -> int:
        """Number of subscriptions (topics with at least one subscriber) in the realm."""
        return len(self._by_id)

    def subscriptions(self) -> list[Subscription]:
        """All subscriptions of the realm."""
        return list(self._by_id.values())

    def attach(self, session: RouterSession) -> None:
        """Make room for a session that joined the realm."""
        self._subscriptions_of[session] = {}

    def detach(self, session: RouterSession) -> None:
        """Remove a session that left from every subscription it held."""
        for subscription in self._subscriptions_of.pop(session, {}).values():
            self._remove_subscriber(subscription, session)

    # -- subscriptions ----------------------------------------------------------------

    def on_subscribe(self, session: RouterSession, message: list) -> None:
        """SUBSCRIBE: [32, Request|id, Options|dict, Topic|uri]."""
        request_id, options, topic = message[1], message[2], message[3]
        match = options.get("match", "exact")
        if match != "exact":
            session.send_error(
                SUBSCRIBE, request_id, ErrorURI.OPTION_NOT_ALLOWED, [f"match {match!r} is not supported by this router"]
            )
            return
        if not is_valid_uri(topic, self.realm.strict_uris):
            session.send_error(SUBSCRIBE, request_id, ErrorURI.INVALID_URI, [f"invalid topic URI {topic!r}"])
            return
        subscription = self._exact.get(topic)
        if subscription is None:
            subscription = Subscription(self._new_subscription_id(), topic, match, self.realm.clock.seconds())
            self._exact[topic] = subscription
            self._by_id[subscription.id] = subscription
        # A repeated SUBSCRIBE of the same topic answers with the same subscription id.
        subscription.subscribers[session] = None
        self._subscriptions_of[session][subscription.id] = subscription
        session.send([SUBSCRIBED, request_id, subscription.id])

    def on_unsubscribe(self, session: RouterSession, message: list) -> None:
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
        self._remove_subscriber(subscription, session)
        session.send([UNSUBSCRIBED, request_id])

    def _remove_subscriber(self, subscription: Subscription, session: RouterSession) -> None:
        subscription.subscribers.pop(session, None)
        if not subscription.subscribers:
            del self._by_id[subscription.id]
            if self._exact.get(subscription.uri) is subscription:
                del self._exact[subscription.uri]

    def _new_subscription_id(self) -> int:
        while True:
            subscription_id = random_id()
            if subscription_id not in self._by_id:
                return subscription_id

    # -- publications -----------------------------------------------------------------

    def on_publish(self, publisher: RouterSession, message: list) -> None:
        """PUBLISH: [16, Request|id, Options|dict, Topic|uri, Arguments|list, ArgumentsKw|dict]."""
        request_id, options, topic = message[1], message[2], message[3]
        acknowledge = options.get("acknowledge") is True
        if not is_valid_uri(topic, self.realm.strict_uris) or topic.startswith("wamp."):
            if acknowledge:
                publisher.send_error(PUBLISH, request_id, ErrorURI.INVALID_URI, [f"invalid topic URI {topic!r}"])
            return
        publication_id = random_id()
        subscription = self._exact.get(topic)
        if subscription is not None:
            self._deliver(subscription, publisher, [EVENT, subscription.id, publication_id, {}, *message[4:]])
        if acknowledge:
            publisher.send([PUBLISHED, request_id, publication_id])

    def _deliver(self, subscription: Subscription, publisher: RouterSession, event: list) -> None:
        encoded: dict[str, bytes] = {}
        for subscriber in subscription.subscribers:
            if subscriber is publisher:
                continue
            try:
                subscriber.peer.send_shared(event, encoded)
            except EncodeError as error:
                self.undeliverable_events += 1
                log.info(
                    "event on {topic} not delivered to session {session_id}: {error}",
                    topic=subscription.uri,
                    session_id=subscriber.session_id,
                    error=error,
                )
