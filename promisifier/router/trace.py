"""A message trace of one session, switched on and off at run time.

``promisifier.session.trace(session_id, on, payloads=False)`` (a procedure the router
serves itself, like the ``wamp.session.*`` meta procedures) starts or stops it. While on,
every message the session receives or is sent is logged (namespace
``promisifier.trace``, event ``trace``) with the session's fields, the message type, its
ids, URIs and options, and its payload (Arguments, ArgumentsKw) as sizes only, unless
``payloads=True``. Authentication secrets (AUTHENTICATE's signature, CHALLENGE's extra)
are never shown.

The trace costs nothing while it is off: switching it on puts wrappers on this session's
``on_message`` and on its peer's ``send`` / ``send_shared`` (instance attributes that
shadow the class's methods); switching it off removes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack
from twisted.logger import Logger

from promisifier.wire.messages import (
    AUTHENTICATE,
    CALL,
    CHALLENGE,
    ERROR,
    EVENT,
    INVOCATION,
    PUBLISH,
    RESULT,
    YIELD,
    Message,
    message_name,
)

if TYPE_CHECKING:
    from promisifier.router.routed import RoutedSession

log = Logger(namespace="promisifier.trace")

#: index of Arguments in each message type that carries a payload (ArgumentsKw follows)
PAYLOAD_AT = {PUBLISH: 4, EVENT: 4, CALL: 4, RESULT: 3, INVOCATION: 4, YIELD: 3, ERROR: 5}
#: message types whose fields after the type code are secret
SECRET = {AUTHENTICATE: "signature and extra", CHALLENGE: "extra"}
#: longest payload text logged with payloads=True
MAX_PAYLOAD_TEXT = 2000


def payload_size(value: Any) -> int:
    """Bytes ``value`` takes in msgpack (a serializer-neutral measure)."""
    try:
        return len(msgpack.packb(value, use_bin_type=True))
    except Exception:  # noqa: BLE001 - something msgpack cannot pack: approximate
        return len(repr(value))


def describe(message: Message, payloads: bool = False) -> str:
    """One line about ``message``: type, ids, URIs and options as they are; the payload
    as sizes (``args=3 items/27 B kwargs=1 key/9 B``), or itself with ``payloads``."""
    kind = message[0]
    name = message_name(kind)
    if kind in SECRET:
        return f"{name} ({SECRET[kind]} not shown)"
    at = PAYLOAD_AT.get(kind, len(message))
    head = " ".join(repr(part) for part in message[1:at])
    tail = message[at:]
    if not tail:
        return f"{name} {head}".rstrip()
    if payloads:
        text = repr(tail)
        if len(text) > MAX_PAYLOAD_TEXT:
            text = text[: MAX_PAYLOAD_TEXT - 3] + "..."
        return f"{name} {head} payload={text}"
    parts = []
    args = tail[0]
    count = len(args) if isinstance(args, list) else 0
    parts.append(f"args={count} item{'s' if count != 1 else ''}/{payload_size(args)} B")
    if len(tail) > 1:
        kwargs = tail[1]
        keys = len(kwargs) if isinstance(kwargs, dict) else 0
        parts.append(f"kwargs={keys} key{'s' if keys != 1 else ''}/{payload_size(kwargs)} B")
    return f"{name} {head} {' '.join(parts)}"


class SessionTrace:
    """The trace of one session; :meth:`stop` takes every wrapper off again."""

    def __init__(self, session: RoutedSession, payloads: bool = False) -> None:
        self.session = session
        self.payloads = payloads
        self._wrapped_peer: list[str] = []
        self._start()

    def _log(self, direction: str, message: Message) -> None:
        try:
            text = describe(message, self.payloads)
        except Exception as error:  # noqa: BLE001 - a trace must never break routing
            text = f"{message_name(message[0]) if message else '?'} (not described: {error})"
        log.info(
            "trace session {session_id} {direction} {message}",
            direction=direction,
            message=text,
            kind=message_name(message[0]) if message else None,
            event="trace",
            **self.session.log_fields(),
        )

    def _start(self) -> None:
        session = self.session
        peer = session.connection
        # what the session receives: a session fed by a connection of this process has on_message
        receive: Callable[[Message], None] | None = getattr(session, "on_message", None)
        if receive is not None:

            def traced_on_message(message: Message) -> None:
                self._log("in", message)
                receive(message)

            session.on_message = traced_on_message  # type: ignore[attr-defined]
        for name in ("send", "send_shared"):
            original = getattr(peer, name)
            try:
                setattr(peer, name, self._traced_send(original, name == "send_shared"))
            except AttributeError:  # a peer with __slots__: only what the session sends itself
                continue
            self._wrapped_peer.append(name)

    def _traced_send(self, original: Callable[..., Any], shared: bool) -> Callable[..., Any]:
        if shared:

            def traced_send_shared(message: Message, encoded: dict[str, Any]) -> Any:
                self._log("out", message)
                return original(message, encoded)

            return traced_send_shared

        def traced_send(message: Message) -> Any:
            self._log("out", message)
            return original(message)

        return traced_send

    def stop(self) -> None:
        session = self.session
        session.__dict__.pop("on_message", None)
        peer = session.connection
        for name in self._wrapped_peer:
            try:
                delattr(peer, name)
            except AttributeError:
                pass
        self._wrapped_peer = []
