"""Handles of the reconnecting client: a registration or subscription that outlives sessions.

A :class:`ClientRegistration` (or :class:`ClientSubscription`) is what
:meth:`Client.register` (or :meth:`Client.subscribe`) gives back. It holds the procedure
(topic) and function (handler), is registered (subscribed) again on every new session of
its client, and points at the current session's
:class:`~promisifier.client.types.Registration` (``Subscription``) while there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from promisifier.client.errors import ConnectionLost, NotConnected
from promisifier.client.types import Registration, Subscription

if TYPE_CHECKING:
    from promisifier.client.session import Session


def _ignore_lost(failure: Failure) -> None:
    failure.trap(ConnectionLost, NotConnected)


class ClientRegistration:
    """A procedure a :class:`~promisifier.client.Client` registers on each of its sessions.

    ``forget(handle)`` is called when it is unregistered: the client stops registering it.
    """

    def __init__(
        self,
        forget: Callable[[ClientRegistration], None],
        procedure: str,
        fn: Callable[..., Any],
        match: str,
        invoke: str,
        details: bool = False,
        stream_input: bool = False,
    ) -> None:
        self._forget = forget
        self.procedure = procedure
        self.fn = fn
        self.match = match
        self.invoke = invoke
        self.details = details
        self.stream_input = stream_input
        #: the registration on the current session (None before the first, or after an error)
        self.current: Registration | None = None
        #: the router's last refusal when registering again after a reconnect, else None
        self.error: BaseException | None = None
        self._removed = False

    @property
    def active(self) -> bool:
        """True while registered on the client's current session."""
        return self.current is not None and self.current.active

    def register_on(self, session: Session) -> defer.Deferred[Registration]:
        """Register on ``session`` (the client calls this after each join)."""

        def done(registration: Registration) -> Registration:
            self.current, self.error = registration, None
            if self._removed:  # unregistered while the REGISTER was under way
                registration.unregister().addErrback(_ignore_lost)
            return registration

        def refused(failure: Failure) -> Failure:
            self.current, self.error = None, failure.value
            return failure

        registering = session.register(
            self.procedure,
            self.fn,
            match=self.match,
            invoke=self.invoke,
            details=self.details,
            stream_input=self.stream_input,
        )
        return registering.addCallbacks(done, refused)

    def unregister(self) -> defer.Deferred[None]:
        """Unregister now and stop registering it after reconnects."""
        self._removed = True
        self._forget(self)
        current, self.current = self.current, None
        if current is None or not current.active:
            return defer.succeed(None)
        return current.unregister().addErrback(_ignore_lost)

    def __repr__(self) -> str:
        return f"<ClientRegistration {self.procedure!r} active={self.active}>"


class ClientSubscription:
    """A topic a :class:`~promisifier.client.Client` subscribes to on each of its sessions.

    ``forget(handle)`` is called when it is unsubscribed: the client stops subscribing it.
    """

    def __init__(
        self,
        forget: Callable[[ClientSubscription], None],
        topic: str,
        handler: Callable[..., Any],
        match: str,
        details: bool = False,
        get_retained: bool = False,
    ) -> None:
        self._forget = forget
        self.topic = topic
        self.handler = handler
        self.match = match
        self.details = details
        #: also asked again on every later session: events retained while disconnected arrive
        self.get_retained = get_retained
        #: the subscription on the current session (None before the first, or after an error)
        self.current: Subscription | None = None
        #: the router's last refusal when subscribing again after a reconnect, else None
        self.error: BaseException | None = None
        self._removed = False
        self._position: tuple[str, int] | None = None

    @property
    def active(self) -> bool:
        """True while subscribed on the client's current session."""
        return self.current is not None and self.current.active

    def subscribe_on(self, session: Session) -> defer.Deferred[Subscription]:
        """Subscribe on ``session`` (the client calls this after each join)."""

        def done(subscription: Subscription) -> Subscription:
            self.current, self.error = subscription, None
            if self._removed:
                subscription.unsubscribe().addErrback(_ignore_lost)
            return subscription

        def refused(failure: Failure) -> Failure:
            self.current, self.error = None, failure.value
            return failure

        # after a reconnect: the events missed since the last one received, if the relay
        # keeps the topic's history (gap-free resume)
        resume = self.position if self.match == "exact" else None
        subscribing = session.subscribe(
            self.topic,
            self.handler,
            match=self.match,
            details=self.details,
            get_retained=self.get_retained,
            resume=resume,
        )
        return subscribing.addCallbacks(done, refused)

    @property
    def position(self) -> tuple[str, int] | None:
        """(epoch, offset) of the last event received with a history position, over sessions."""
        current = self.current
        if current is not None and current.position is not None:
            self._position = current.position
        return self._position

    def unsubscribe(self) -> defer.Deferred[None]:
        """Unsubscribe now and stop subscribing after reconnects."""
        self._removed = True
        self._forget(self)
        current, self.current = self.current, None
        if current is None or not current.active:
            return defer.succeed(None)
        return current.unsubscribe().addErrback(_ignore_lost)

    def __repr__(self) -> str:
        return f"<ClientSubscription {self.topic!r} active={self.active}>"


__all__ = ["ClientRegistration", "ClientSubscription"]
