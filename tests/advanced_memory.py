"""A router on a :class:`~twisted.internet.task.Clock` with in-memory clients, for the
advanced-profile tests (test_advanced_profile*.py).

Each :class:`Peer` is a client connection as the router sees it (``send``, ``send_shared``,
``close``) and, for the test, the list of messages the router sent it. What the router
sends is encoded with the peer's serializer and decoded again, so a value a serializer
cannot carry fails as on a socket. Every client action runs what became due on the clock.
"""

from __future__ import annotations

import itertools
from typing import Any

from twisted.internet.task import Clock

from promisifier.router import Router, RouterConfig
from promisifier.router.config import RealmConfig
from promisifier.wire import SERIALIZERS, ProtocolError, check_message
from promisifier.wire.messages import (
    CALL,
    ERROR,
    EVENT,
    HELLO,
    INVOCATION,
    PUBLISH,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    YIELD,
)

#: HELLO roles announcing the client features the advanced profile tests use
ROLES: dict[str, Any] = {
    "caller": {"features": {"progressive_call_results": True, "call_canceling": True, "call_timeout": True}},
    "callee": {
        "features": {
            "progressive_call_results": True,
            "call_canceling": True,
            "call_timeout": True,
            "shared_registration": True,
            "pattern_based_registration": True,
        }
    },
    "publisher": {"features": {}},
    "subscriber": {"features": {"pattern_based_subscription": True}},
}

_ids = itertools.count(1)


def with_payload(message: list, args: list | None, kwargs: dict | None) -> list:
    if args is not None or kwargs:
        message.append(args if args is not None else [])
        if kwargs:
            message.append(kwargs)
    return message


class Memory:
    """One router on a Clock and the peers a test connected."""

    def __init__(self, *realms: RealmConfig | str, **config: Any) -> None:
        self.clock = Clock()
        self.router = Router(RouterConfig(realms=realms or ("realm1",), **config), reactor=self.clock)

    def realm(self, name: str = "realm1") -> Any:
        return self.router.realms[name]

    def join(self, realm: str = "realm1", serializer: str | None = "json", roles: dict | None = None) -> Peer:
        peer = Peer(self, serializer)
        peer.send_raw([HELLO, realm, {"roles": roles if roles is not None else ROLES}])
        welcome = peer.last()
        assert welcome[0] == WELCOME, welcome
        peer.session_id = welcome[1]
        return peer

    def advance(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        while any(call.getTime() <= self.clock.seconds() for call in self.clock.getDelayedCalls()):
            self.clock.advance(0)


class Peer:
    """A client connection: the router's peer, and what it received."""

    congested = False

    def __init__(self, memory: Memory, serializer: str | None) -> None:
        self.memory = memory
        self.connection_id = next(_ids)
        self.peer = f"memory:{self.connection_id}"
        self.serializer_name = serializer
        self._serializer = SERIALIZERS[serializer] if serializer is not None else None
        self.received: list[list] = []
        self.open = True
        self.closed_with: tuple[int, str] | None = None
        self.session_id: int | None = None
        self._request_ids = itertools.count(1)
        self.session = memory.router.new_session(self)

    # the router's side

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
        if self.open:
            self.open = False
            self.closed_with = (code, reason)
            self.memory.clock.callLater(0, self.session.on_close, code, reason)

    # the test's side

    def send_raw(self, message: list) -> None:
        try:
            checked = check_message(message)
        except ProtocolError as error:
            self.session.on_protocol_error(error)
        else:
            self.session.on_message(checked)
        self.memory.advance()

    def drop(self) -> None:
        if self.open:
            self.open = False
            self.session.on_close(1006, "connection lost")
            self.memory.advance()

    def request_id(self) -> int:
        return next(self._request_ids)

    def register(self, procedure: str, **options: Any) -> int:
        request_id = self.request_id()
        self.send_raw([REGISTER, request_id, options, procedure])
        reply = self.last()
        assert reply[:2] == [REGISTERED, request_id], reply
        return reply[2]

    def subscribe(self, topic: str, **options: Any) -> int:
        request_id = self.request_id()
        self.send_raw([SUBSCRIBE, request_id, options, topic])
        replies = [m for m in self.received if m[:2] == [SUBSCRIBED, request_id]]
        assert replies, self.last()
        return replies[0][2]

    def call(self, procedure: str, args: list | None = None, kwargs: dict | None = None, **options: Any) -> int:
        request_id = self.request_id()
        self.send_raw(with_payload([CALL, request_id, options, procedure], args, kwargs))
        return request_id

    def publish(self, topic: str, args: list | None = None, kwargs: dict | None = None, **options: Any) -> int:
        request_id = self.request_id()
        self.send_raw(with_payload([PUBLISH, request_id, options, topic], args, kwargs))
        return request_id

    def yield_(self, invocation_id: int, args: list | None = None, kwargs: dict | None = None, **options: Any) -> None:
        self.send_raw(with_payload([YIELD, invocation_id, options], args, kwargs))

    def error(self, invocation_id: int, uri: str, args: list | None = None) -> None:
        self.send_raw(with_payload([ERROR, INVOCATION, invocation_id, {}, uri], args, None))

    def last(self) -> list:
        assert self.received, "the router sent nothing"
        return self.received[-1]

    def of_type(self, message_type: int) -> list[list]:
        return [message for message in self.received if message[0] == message_type]

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

    def error_of(self, request_type: int, request_id: int) -> list | None:
        for message in self.received:
            if message[0] == ERROR and message[1] == request_type and message[2] == request_id:
                return message
        return None
