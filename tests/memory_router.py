"""The router driven in memory: decoded WAMP messages in, messages out, no sockets.

:class:`MemoryRouter` is a :class:`promisifier.router.RouterCore` on a
:class:`twisted.internet.task.Clock`; :class:`MemoryClient` is one client connection to it,
seen by the router as a :class:`~promisifier.router.peer.Peer` (``send``, ``send_shared``,
``close``) and by the test as a list of the messages the router sent it.

What a transport does around the router is done here the same way:

* a message from the client passes :func:`promisifier.wire.check_message` first (a
  :class:`~promisifier.wire.ProtocolError` goes to ``on_protocol_error``, as the transports
  do);
* what the router sends a client with a serializer (``"json"`` by default) is encoded and
  decoded again, so an :class:`~promisifier.wire.EncodeError` reaches the router as it would
  on a socket, and the test sees what a client would have decoded;
* ``close`` takes effect at once (nothing more reaches the client) and the router learns
  that the connection is gone (``on_close``) on the clock's next turn, as after a closing
  handshake. :meth:`MemoryClient.drop` is a connection lost at once.

Nothing runs unless the test makes it: :meth:`MemoryRouter.advance` moves the clock (timeouts,
deferred closes); every client action runs the clock's due calls before it returns.
"""

from __future__ import annotations

import itertools
from typing import Any

from twisted.internet.task import Clock

from promisifier.router import RouterConfig, RouterCore
from promisifier.router.router_config import RealmConfig
from promisifier.router.session import RouterSession, RouterSessionState
from promisifier.wire import SERIALIZERS, ProtocolError, check_message
from promisifier.wire.messages import (
    CALL,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTER,
    UNSUBSCRIBE,
    WELCOME,
    YIELD,
    message_name,
)

#: HELLO.Details.roles announcing every client feature the router knows
ALL_ROLES: dict[str, Any] = {
    "caller": {
        "features": {
            "progressive_call_results": True,
            "call_timeout": True,
            "call_canceling": True,
            "caller_identification": True,
        }
    },
    "callee": {
        "features": {
            "progressive_call_results": True,
            "call_timeout": True,
            "call_canceling": True,
            "caller_identification": True,
            "shared_registration": True,
            "pattern_based_registration": True,
        }
    },
    "publisher": {"features": {"publisher_identification": True, "subscriber_blackwhite_listing": True}},
    "subscriber": {"features": {"pattern_based_subscription": True, "publisher_identification": True}},
}

#: HELLO roles of a callee that does not announce call_canceling (it never gets INTERRUPT)
ROLES_WITHOUT_CANCELING: dict[str, Any] = {
    **ALL_ROLES,
    "callee": {"features": {k: v for k, v in ALL_ROLES["callee"]["features"].items() if k != "call_canceling"}},
}

_connection_ids = itertools.count(1)


class MemoryRouter:
    """A router on a fake clock, and the clients a test connected to it."""

    def __init__(self, config: RouterConfig | None = None, *realms: str) -> None:
        if config is None:
            config = RouterConfig(realms=tuple(RealmConfig(name) for name in (realms or ("realm1",))))
        self.clock = Clock()
        self.router = RouterCore(config, reactor=self.clock)
        self.clients: list[MemoryClient] = []

    def realm(self, name: str = "realm1") -> Any:
        return self.router.realms[name]

    def connect(self, serializer: str | None = "json", **kwargs: Any) -> MemoryClient:
        """A new connection to the router (no session yet: send HELLO, or use :meth:`join`)."""
        client = MemoryClient(self, serializer, **kwargs)
        self.clients.append(client)
        return client

    def join(self, realm: str = "realm1", roles: dict | None = None, serializer: str | None = "json", **details: Any):
        """A connection with a session joined to ``realm`` (fails unless WELCOME came)."""
        client = self.connect(serializer)
        client.join(realm, roles, **details)
        return client

    def advance(self, seconds: float = 0.0) -> None:
        """Move the clock on by ``seconds`` and run what became due (0: only what is due now)."""
        self.clock.advance(seconds)
        # calls made due by the calls that just ran (a close scheduled by a timeout)
        while any(call.getTime() <= self.clock.seconds() for call in self.clock.getDelayedCalls()):
            self.clock.advance(0)

    def state_counts(self) -> dict[str, int]:
        return self.router.state_counts()

    def leave_all(self) -> None:
        """Every client that is still connected leaves (GOODBYE) and closes."""
        for client in self.clients:
            if client.open and client.state is RouterSessionState.ESTABLISHED:
                client.leave()
            client.close()
        self.advance()

    def assert_idle(self) -> None:
        """Every client left: the router holds no state (all counts zero)."""
        self.leave_all()
        assert self.router.state_counts() == {
            "connections": 0,
            "sessions": 0,
            "registrations": 0,
            "subscriptions": 0,
            "pending_calls": 0,
        }


class MemoryClient:
    """One client connection: the router's :class:`Peer`, and the test's end of it."""

    def __init__(
        self, memory: MemoryRouter, serializer: str | None = "json", authenticator: Any = None, peer: str = ""
    ) -> None:
        self.memory = memory
        self.connection_id = next(_connection_ids)
        self.peer = peer or f"memory:{self.connection_id}"
        self.serializer_name = serializer
        self._serializer = SERIALIZERS[serializer] if serializer is not None else None
        #: set by a test to make the router see a slow consumer
        self.congested = False
        #: every message the router sent on this connection, in order
        self.received: list[list] = []
        self.open = True
        #: (code, reason) once the router closed the connection
        self.closed_with: tuple[int, str] | None = None
        self.session_id: int | None = None
        self._request_ids = itertools.count(1)
        self.session: RouterSession = memory.router.new_session(self, authenticator)

    def __repr__(self) -> str:
        return f"<MemoryClient {self.connection_id} session={self.session_id}>"

    # -- the router's side (Peer) --------------------------------------------------------

    def send(self, message: list) -> None:
        if not self.open:
            return
        if self._serializer is not None:
            message = self._serializer.decode(self._serializer.encode(message))
        self.received.append(message)

    def send_shared(self, message: list, encoded: dict[str, bytes]) -> bool:
        if not self.open or self.congested:
            return False
        self.send(message)
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.open:
            return
        self.open = False
        self.closed_with = (code, reason)
        # the router may close a connection while making its session (router stopping)
        self.memory.clock.callLater(0, lambda: self.session.on_close(code, reason))

    # -- the test's side -------------------------------------------------------------------

    def send_raw(self, message: list) -> None:
        """Deliver ``message`` to the router as a transport would (checked first)."""
        assert self.open, "the connection is closed"
        try:
            checked = check_message(message)
        except ProtocolError as error:
            self.session.on_protocol_error(error)
        else:
            self.session.on_message(checked)
        self.memory.advance()

    def drop(self) -> None:
        """The connection is lost (no GOODBYE, no closing handshake)."""
        if self.open:
            self.open = False
            self.closed_with = (1006, "connection lost")
            self.session.on_close(1006, "connection lost")
            self.memory.advance()

    def next_request_id(self) -> int:
        return next(self._request_ids)

    def join(self, realm: str = "realm1", roles: dict | None = None, **details: Any) -> int:
        """HELLO; returns the session id of the WELCOME (fails the test on anything else)."""
        self.send_raw([HELLO, realm, {"roles": roles if roles is not None else ALL_ROLES, **details}])
        welcome = self.last()
        assert welcome[0] == WELCOME, f"expected WELCOME, got {welcome}"
        self.session_id = welcome[1]
        return welcome[1]

    def leave(self) -> list:
        """GOODBYE; returns the router's GOODBYE reply."""
        before = len(self.received)
        self.send_raw([GOODBYE, {}, "wamp.close.close_realm"])
        replies = [m for m in self.received[before:] if m[0] == GOODBYE]
        assert replies, f"expected GOODBYE, got {self.received[before:]}"
        return replies[0]

    def register(self, procedure: str, **options: Any) -> int:
        """REGISTER; returns the registration id (fails the test on an ERROR)."""
        request_id = self.next_request_id()
        self.send_raw([REGISTER, request_id, options, procedure])
        reply = self.last()
        assert reply[:2] == [REGISTERED, request_id], f"expected REGISTERED, got {reply}"
        return reply[2]

    def unregister(self, registration_id: int) -> list:
        request_id = self.next_request_id()
        self.send_raw([UNREGISTER, request_id, registration_id])
        return self.last()

    def subscribe(self, topic: str, **options: Any) -> int:
        """SUBSCRIBE; returns the subscription id (fails the test on an ERROR)."""
        request_id = self.next_request_id()
        before = len(self.received)
        self.send_raw([SUBSCRIBE, request_id, options, topic])
        # SUBSCRIBED may be followed at once by the retained event (get_retained)
        reply = self.received[before] if len(self.received) > before else None
        assert reply is not None and reply[:2] == [SUBSCRIBED, request_id], f"expected SUBSCRIBED, got {reply}"
        return reply[2]

    def unsubscribe(self, subscription_id: int) -> list:
        request_id = self.next_request_id()
        self.send_raw([UNSUBSCRIBE, request_id, subscription_id])
        return self.last()

    def call(self, procedure: str, args: list | None = None, kwargs: dict | None = None, **options: Any) -> int:
        """CALL; returns its request id (the answer is read with :meth:`answers_to`)."""
        request_id = self.next_request_id()
        self.send_raw(_with_payload([CALL, request_id, options, procedure], args, kwargs))
        return request_id

    def publish(self, topic: str, args: list | None = None, kwargs: dict | None = None, **options: Any) -> int:
        """PUBLISH; returns its request id."""
        request_id = self.next_request_id()
        self.send_raw(_with_payload([PUBLISH, request_id, options, topic], args, kwargs))
        return request_id

    def yield_(self, invocation_id: int, args: list | None = None, kwargs: dict | None = None, **options: Any) -> None:
        """YIELD for an INVOCATION (``progress=True`` for a progressive result)."""
        self.send_raw(_with_payload([YIELD, invocation_id, options], args, kwargs))

    def error(self, invocation_id: int, uri: str, args: list | None = None, kwargs: dict | None = None) -> None:
        """ERROR for an INVOCATION."""
        self.send_raw(_with_payload([ERROR, INVOCATION, invocation_id, {}, uri], args, kwargs))

    def call_and_answer(self, procedure: str, args: list | None = None, **options: Any) -> list:
        """CALL and return the one final answer already there (RESULT or ERROR)."""
        request_id = self.call(procedure, args, **options)
        finals = self.finals_of(request_id)
        assert len(finals) == 1, f"expected one answer to CALL {request_id}, got {self.answers_to(request_id)}"
        return finals[0]

    # -- reading what arrived ---------------------------------------------------------------

    def last(self) -> list:
        assert self.received, "the router sent nothing"
        return self.received[-1]

    def of_type(self, message_type: int) -> list[list]:
        return [message for message in self.received if message[0] == message_type]

    def take(self, message_type: int) -> list[list]:
        """The messages of a type received so far; they are removed from :attr:`received`."""
        taken = self.of_type(message_type)
        self.received = [message for message in self.received if message[0] != message_type]
        return taken

    def one(self, message_type: int) -> list:
        """The one message of a type received so far (removed from :attr:`received`)."""
        taken = self.take(message_type)
        assert len(taken) == 1, f"expected one {message_name(message_type)}, got {taken}"
        return taken[0]

    def invocations(self) -> list[list]:
        return self.of_type(INVOCATION)

    def events(self) -> list[list]:
        return self.of_type(EVENT)

    def answers_to(self, request_id: int) -> list[list]:
        """Every RESULT (progressive or final) and ERROR received for the CALL ``request_id``."""
        return [
            m
            for m in self.received
            if (m[0] == RESULT and m[1] == request_id) or (m[0] == ERROR and m[1] == CALL and m[2] == request_id)
        ]

    def finals_of(self, request_id: int) -> list[list]:
        """The final answers (RESULT without progress, or ERROR) received for a CALL."""
        return [m for m in self.answers_to(request_id) if not (m[0] == RESULT and m[2].get("progress"))]

    def error_of(self, request_type: int, request_id: int) -> list | None:
        """The ERROR received for a request of a type, if any."""
        for message in self.received:
            if message[0] == ERROR and message[1] == request_type and message[2] == request_id:
                return message
        return None

    def published(self, request_id: int) -> bool:
        return any(m[0] == PUBLISHED and m[1] == request_id for m in self.received)

    @property
    def state(self) -> RouterSessionState:
        return self.session.state


def _with_payload(message: list, args: list | None, kwargs: dict | None) -> list:
    if args is not None or kwargs:
        message.append(args if args is not None else [])
        if kwargs:
            message.append(kwargs)
    return message
