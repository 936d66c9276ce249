"""Small value and handle types of the client: results, registrations, subscriptions, stats."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from twisted.internet import defer


@dataclass
class CallResult:
    """A result with several positional values and/or keyword values.

    A call fires with a plain value when the callee answered with exactly one positional
    value and no keyword values, with None when it answered with nothing, and with a
    ``CallResult`` otherwise. A procedure returns a ``CallResult`` to answer with several
    values: ``return CallResult([1, 2], {"total": 3})``.
    """

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passthru:
    """An opaque payload the router forwards untouched (payload passthru mode), e.g. one
    encrypted end to end or an MQTT message.

    Pass one as the only argument of ``call``, ``publish`` or a procedure's return value:
    its ``payload`` goes where the arguments would be and its attributes as the ``ppt_*``
    options. A call, event or invocation carrying one gets it as its only argument.
    ``scheme`` is required (``"mqtt"``, ``"wamp"``, or your own ``"x_..."``).
    """

    payload: bytes
    scheme: str
    serializer: str | None = None
    cipher: str | None = None
    keyid: str | None = None

    def attributes(self) -> dict[str, str]:
        """The ``ppt_*`` options or details that describe the payload."""
        found = {"ppt_scheme": self.scheme}
        for name in ("serializer", "cipher", "keyid"):
            value = getattr(self, name)
            if value is not None:
                found[f"ppt_{name}"] = value
        return found

    @classmethod
    def received(cls, payload: bytes, details: dict[str, Any]) -> Passthru:
        """The passthru payload of a received message with these Details (or Options)."""

        def text(key: str) -> str | None:
            value = details.get(key)
            return value if type(value) is str else None

        return cls(
            payload,
            text("ppt_scheme") or text("enc_algo") or "",
            text("ppt_serializer") or text("enc_serializer"),
            text("ppt_cipher"),
            text("ppt_keyid") or text("enc_key"),
        )


@dataclass(frozen=True)
class InvocationDetails:
    """What a procedure registered with ``details=True`` learns about each call; it gets it
    as the keyword argument ``details``.

    ``procedure`` is the URI the caller called: for a prefix or wildcard registration, the
    concrete one. ``caller``, ``caller_authid`` and ``caller_authrole`` are None unless
    the router discloses the caller (the caller asked with ``disclose_me``, or the
    router's configuration discloses callers to this procedure).
    """

    procedure: str
    registration: int
    caller: int | None = None
    caller_authid: str | None = None
    caller_authrole: str | None = None


@dataclass(frozen=True)
class EventDetails:
    """What a handler subscribed with ``details=True`` learns about each event; it gets it
    as the keyword argument ``details``.

    ``topic`` is the topic the event was published to (for a prefix or wildcard
    subscription, the concrete one); ``retained`` is True for a retained event delivered
    on subscribing (``get_retained=True``). The publisher fields are None unless the
    router discloses the publisher.
    """

    topic: str
    subscription: int
    publication: int
    publisher: int | None = None
    publisher_authid: str | None = None
    publisher_authrole: str | None = None
    retained: bool = False
    #: the event's place in its topic's history on a relay that keeps one (gap-free
    #: resume): its offset and the history's epoch; None elsewhere
    offset: int | None = None
    epoch: str | None = None
    #: True for an event missed while disconnected and given after the reconnect; False
    #: for the first event after a reconnect whose missed events could not all be given
    #: (there is a gap before it); None otherwise
    recovered: bool | None = None


class SessionState(enum.Enum):
    """Where a client session is in its life.

    NEW -> JOINING (HELLO sent; CHALLENGE answered here) -> JOINED -> LEAVING (GOODBYE
    sent) -> LEFT (session over, connection still open) -> CLOSED (connection gone).
    """

    NEW = "new"
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    LEFT = "left"
    CLOSED = "closed"


@dataclass(frozen=True)
class SessionStats:
    """Counters of one session (a snapshot taken when :attr:`Session.stats` is read).

    Bytes and messages are counted by the connection (WebSocket payloads, before framing).
    """

    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    #: CALLs sent
    calls_made: int = 0
    #: INVOCATIONs received for registered procedures (answered or not)
    invocations_served: int = 0
    #: EVENTs received and dispatched to handlers
    events_received: int = 0
    #: PUBLISHes sent
    publications_sent: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


class Registration:
    """A procedure registered by a session (the answer to :meth:`Session.register`)."""

    def __init__(
        self,
        unregister: Callable[[Registration], defer.Deferred[None]],
        registration_id: int,
        procedure: str,
        fn: Callable[..., Any],
        match: str,
        invoke: str,
        details: bool = False,
        stream_input: bool = False,
    ) -> None:
        #: what unregisters it: the session's, which sends the UNREGISTER
        self._unregister = unregister
        #: the router's registration id
        self.id = registration_id
        self.procedure = procedure
        self.fn = fn
        self.match = match
        self.invoke = invoke
        #: True when ``fn`` gets an :class:`InvocationDetails` as ``details``
        self.details = details
        #: True when ``fn`` gets the call's arguments as ``chunks`` (progressive call invocations)
        self.stream_input = stream_input
        #: True until unregistered or the session ends
        self.active = True

    def unregister(self) -> defer.Deferred[None]:
        """Unregister the procedure; fires when the router confirmed (at once if inactive)."""
        return self._unregister(self)

    def __repr__(self) -> str:
        return f"<Registration {self.id} {self.procedure!r} active={self.active}>"


class Subscription:
    """A topic subscribed by a session (the answer to :meth:`Session.subscribe`).

    Several subscriptions of one session to the same topic share the router's
    subscription id; the UNSUBSCRIBE is sent when the last of them is unsubscribed.
    """

    def __init__(
        self,
        unsubscribe: Callable[[Subscription], defer.Deferred[None]],
        subscription_id: int,
        topic: str,
        handler: Callable[..., Any],
        match: str,
        details: bool = False,
    ) -> None:
        #: what unsubscribes it: the session's, which sends the UNSUBSCRIBE when it is the last
        self._unsubscribe = unsubscribe
        #: the router's subscription id
        self.id = subscription_id
        self.topic = topic
        self.handler = handler
        self.match = match
        #: True when ``handler`` gets an :class:`EventDetails` as ``details``
        self.details = details
        #: True until unsubscribed or the session ends
        self.active = True
        #: (epoch, offset) of the last event received with a history position, else None
        self.position: tuple[str, int] | None = None
        #: when subscribed with ``resume``: whether every missed event was given (True),
        #: or not (False, until an event reports it); None without ``resume``
        self.recovered: bool | None = None

    def unsubscribe(self) -> defer.Deferred[None]:
        """Stop receiving events; fires when done (at once if inactive or shared)."""
        return self._unsubscribe(self)

    def __repr__(self) -> str:
        return f"<Subscription {self.id} {self.topic!r} active={self.active}>"


__all__ = [
    "CallResult",
    "EventDetails",
    "InvocationDetails",
    "Registration",
    "SessionState",
    "SessionStats",
    "Subscription",
]
