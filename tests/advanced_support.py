"""Helpers for the advanced-profile tests (test_advanced_rpc, test_advanced_pubsub, test_meta_api).

Built on ``tests/support.py`` (router on an ephemeral port, joined autobahn-python sessions),
plus what the advanced profile needs to be observed from the outside:

* :class:`WireSession` - an autobahn session that keeps every WAMP frame it sent and received,
  decoded from the WebSocket payload (so tests see exactly what went over the wire), lets a
  test add options autobahn-python has no API for (``disclose_me``, ``disclose_caller``, a
  CANCEL ``mode``, deliberately bad options) to its next outgoing message of a type, can hold
  back INTERRUPTs, and can announce other HELLO roles than autobahn's defaults.
* :class:`Harness` - one router with two realms (``realm1``: ``cancel_reply="always"``,
  ``killonly``: ``cancel_reply="kill_only"``) and every session a test opened; ``finish()``
  makes every session leave and waits until ``router.state_counts()`` is all zeros.

Nothing here sleeps: every wait is a Deferred bounded by ``within``. To show that something
did *not* arrive, a later message that must arrive on the same connection is awaited first
(:func:`sync`), and the recorded frames are inspected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp import message as ab_message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.role import DEFAULT_CLIENT_ROLES, RoleCalleeFeatures
from twisted.internet import defer

from promisifier.router import RouterConfig
from promisifier.router.router_config import RealmConfig
from tests.support import (
    SERIALIZER_NAMES,
    RecordingSession,
    connect_autobahn,
    leave_and_wait,
    router_idle,
    start_router,
    within,
)

# WAMP message type codes (as on the wire)
HELLO, WELCOME, GOODBYE, ERROR = 1, 2, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, CANCEL, RESULT = 48, 49, 50
REGISTER, REGISTERED, INVOCATION, INTERRUPT, YIELD = 64, 65, 68, 69, 70

ZERO = {"connections": 0, "sessions": 0, "registrations": 0, "subscriptions": 0, "pending_calls": 0}

by_serializer = pytest.mark.parametrize("ser", SERIALIZER_NAMES)

#: realm answering CANCEL in modes skip/killnowait with ERROR at once (the spec)
REALM = "realm1"
#: realm answering CANCEL only in mode kill (safe for autobahn-js callers)
KILL_ONLY_REALM = "killonly"


# -- raw frames ------------------------------------------------------------------------


class RawMessage(ab_message.Message):
    """A WAMP message given as the list that goes on the wire; autobahn sends it as is."""

    def __init__(self, wire: list) -> None:
        ab_message.Message.__init__(self)
        self.wire = wire

    def marshal(self) -> list:
        return list(self.wire)


def decode_frame(payload: bytes, is_binary: bool) -> list:
    """One WebSocket payload as the list it carries (text: JSON, binary: msgpack)."""
    if is_binary:
        return msgpack.unpackb(payload, raw=False)
    return json.loads(payload.decode("utf-8"))


# -- sessions ----------------------------------------------------------------------------


class WireSession(RecordingSession):
    """An autobahn ApplicationSession that records its frames and can bend its next message."""

    #: HELLO.Details.roles to announce instead of autobahn-python's defaults (None: defaults)
    client_roles: dict | None = None

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        if self.client_roles is not None:
            self._session_roles = self.client_roles
        #: every frame this session sent, decoded from the WebSocket payload
        self.wire_sent: list[list] = []
        #: every frame this session received, decoded from the WebSocket payload
        self.wire_received: list[list] = []
        #: when True, INTERRUPTs are kept in ``held`` instead of reaching autobahn
        self.hold_interrupts = False
        self.held: list[Any] = []
        self._patches: dict[int, list[dict]] = {}
        self._wire_waiters: list[tuple[Callable[[list], bool], int, defer.Deferred]] = []

    # -- bending outgoing messages ------------------------------------------------------

    def patch_next(self, message_type: int, **options: Any) -> None:
        """Merge ``options`` into the Options (index 2) of the next message of that type
        this session sends; an option given as ``...`` is removed."""
        self._patches.setdefault(message_type, []).append(options)

    def send_raw(self, wire: list) -> None:
        """Send a message given as its wire list."""
        self._transport.send(RawMessage(wire))

    def onOpen(self, transport: Any) -> None:  # noqa: N802 - autobahn API
        original_send = transport.send
        original_send_message = transport.sendMessage
        original_on_message = transport.onMessage

        def send(msg: Any) -> Any:
            patches = self._patches.get(getattr(msg, "MESSAGE_TYPE", None))
            if patches:
                wire = msg.marshal()
                options = dict(wire[2])
                for key, value in patches.pop(0).items():
                    if value is ...:
                        options.pop(key, None)
                    else:
                        options[key] = value
                wire[2] = options
                msg = RawMessage(wire)
            return original_send(msg)

        def send_message(payload: bytes, isBinary: bool = False, *args: Any, **kwargs: Any) -> Any:  # noqa: N803
            self.wire_sent.append(decode_frame(payload, isBinary))
            return original_send_message(payload, isBinary, *args, **kwargs)

        def on_message(payload: bytes, isBinary: bool) -> Any:  # noqa: N803
            frame = decode_frame(payload, isBinary)
            self.wire_received.append(frame)
            try:
                return original_on_message(payload, isBinary)
            finally:
                self._check_wire_waiters()

        transport.send = send
        transport.sendMessage = send_message
        transport.onMessage = on_message
        super().onOpen(transport)

    def onMessage(self, msg: Any) -> None:  # noqa: N802 - autobahn API
        if self.hold_interrupts and isinstance(msg, ab_message.Interrupt):
            self.held.append(msg)
            return
        super().onMessage(msg)

    def release_interrupts(self) -> None:
        """Hand the held INTERRUPTs to autobahn (which then cancels the invocations)."""
        self.hold_interrupts = False
        held, self.held = self.held, []
        for msg in held:
            super().onMessage(msg)

    # -- waiting for frames -------------------------------------------------------------

    def wait_wire(self, predicate: Callable[[list], bool], since: int = 0, seconds: float = 10.0) -> defer.Deferred:
        """Fires with the first received frame at index >= ``since`` matching ``predicate``."""
        for frame in self.wire_received[since:]:
            if predicate(frame):
                return defer.succeed(frame)
        d: defer.Deferred = defer.Deferred()
        self._wire_waiters.append((predicate, since, d))
        return within(d, seconds)

    def _check_wire_waiters(self) -> None:
        for item in list(self._wire_waiters):
            predicate, since, d = item
            if d.called:
                self._wire_waiters.remove(item)
                continue
            for frame in self.wire_received[since:]:
                if predicate(frame):
                    self._wire_waiters.remove(item)
                    d.callback(frame)
                    break

    # -- reading the record ---------------------------------------------------------------

    def received(self, message_type: int) -> list[list]:
        """Received frames of one type."""
        return [frame for frame in self.wire_received if frame[0] == message_type]

    def sent(self, message_type: int) -> list[list]:
        """Sent frames of one type."""
        return [frame for frame in self.wire_sent if frame[0] == message_type]

    def call_answers(self, request_id: int) -> list[list]:
        """Every RESULT (progressive or final) and ERROR received for the CALL ``request_id``."""
        return [
            frame
            for frame in self.wire_received
            if (frame[0] == RESULT and frame[1] == request_id)
            or (frame[0] == ERROR and frame[1] == CALL and frame[2] == request_id)
        ]

    def call_finals(self, request_id: int) -> list[list]:
        """The final answers (RESULT without progress, or ERROR) received for a CALL."""
        return [
            frame for frame in self.call_answers(request_id) if not (frame[0] == RESULT and frame[2].get("progress"))
        ]

    def request_id_of(self, d: defer.Deferred) -> int:
        """The request id autobahn gave the call whose Deferred is ``d`` (while pending)."""
        for request_id, request in self._call_reqs.items():
            if request.on_reply is d:
                return request_id
        raise AssertionError("no pending call for this Deferred")

    def onJoin(self, details: Any) -> None:  # noqa: N802 - autobahn API
        self.joined_session_id = details.session  # autobahn forgets its id when it leaves
        super().onJoin(details)

    @property
    def session_id(self) -> int:
        """The session id the router gave this session (kept after it left)."""
        return self.joined_session_id


def roles_without_call_canceling() -> dict:
    """autobahn-python's HELLO roles, minus call_canceling for the callee (like autobahn-js)."""
    roles = dict(DEFAULT_CLIENT_ROLES)
    roles["callee"] = RoleCalleeFeatures(
        caller_identification=True,
        pattern_based_registration=True,
        shared_registration=True,
        progressive_call_results=True,
        registration_revocation=True,
    )
    return roles


class NoCancelSession(WireSession):
    """A callee whose HELLO does not announce call_canceling (it must never get INTERRUPT)."""

    client_roles = roles_without_call_canceling()


# -- waiting helpers ---------------------------------------------------------------------


class Collector:
    """A handler (for events or invocations) that records calls and lets tests wait for N."""

    def __init__(self, result: Any = None) -> None:
        self.calls: list[tuple[tuple, dict]] = []
        self.result = result
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        for item in [(n, d) for n, d in self._waiters if len(self.calls) >= n]:
            self._waiters.remove(item)
            if not item[1].called:
                item[1].callback(list(self.calls))
        return self.result

    @property
    def args(self) -> list[tuple]:
        return [args for args, _ in self.calls]

    @property
    def details(self) -> list[Any]:
        return [kwargs.get("details") for _, kwargs in self.calls]

    def wait_for(self, count: int = 1, seconds: float = 10.0) -> defer.Deferred:
        """Fires with the list of calls once at least ``count`` have arrived."""
        if len(self.calls) >= count:
            return defer.succeed(list(self.calls))
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((count, d))
        return within(d, seconds)


@defer.inlineCallbacks
def expect_application_error(d: defer.Deferred, seconds: float = 10.0):
    """Wait for ``d`` to fail with ApplicationError; fire with that error."""
    try:
        value = yield within(d, seconds)
    except ApplicationError as error:
        return error
    raise AssertionError(f"expected an ApplicationError, got result {value!r}")


@defer.inlineCallbacks
def sync(session: WireSession):
    """A round trip through the router on ``session``'s connection (a meta call that
    publishes nothing): whatever the router sent this session before, has arrived."""
    yield within(session.call("wamp.session.count"))


def drop_transport(session: RecordingSession) -> None:
    """Cut the session's TCP connection at once: no GOODBYE, no WebSocket close."""
    session._transport.transport.abortConnection()


# -- the harness -------------------------------------------------------------------------


def advanced_config() -> RouterConfig:
    return RouterConfig(realms=(RealmConfig(REALM), RealmConfig(KILL_ONLY_REALM, cancel_reply="kill_only")))


class Harness:
    """A router on an ephemeral port plus every autobahn session a test opened."""

    def __init__(self, rr: Any) -> None:
        self.rr = rr
        self.router = rr.router
        self.sessions: list[RecordingSession] = []

    def realm(self, name: str = REALM) -> Any:
        return self.router.realms[name]

    @defer.inlineCallbacks
    def connect(self, ser: str, session_class: Any = WireSession, realm: str = REALM):
        session = yield connect_autobahn(self.rr.url, realm, ser, session_class)
        self.sessions.append(session)
        return session

    def router_session(self, session: RecordingSession, realm: str = REALM) -> Any:
        """The router's half of an autobahn session."""
        return self.realm(realm).sessions[session._session_id]

    def assume_identity(
        self, session: RecordingSession, authid: str | None = None, authrole: str | None = None
    ) -> None:
        """Give a joined session another authid/authrole on the router side.

        Anonymous sessions all have authrole "anonymous"; authentication is not what these
        tests are about, so black/white listing and the meta API are exercised with
        identities set directly on the router's session object.
        """
        router_session = self.router_session(session)
        if authid is not None:
            router_session.authid = authid
        if authrole is not None:
            router_session.authrole = authrole

    @defer.inlineCallbacks
    def finish(self):
        """Every session leaves; router state back to zero; autobahn judged every frame."""
        for session in self.sessions:
            yield leave_and_wait(session)
        counts = yield router_idle(self.router)
        assert counts == ZERO
        assert self.router.state_counts() == ZERO
        for session in self.sessions:
            assert session.judge.failures == []
            assert session.judge.parsed > 0

    @defer.inlineCallbacks
    def cleanup(self):
        """After a failed test: close what is still open, ignoring errors."""
        for session in self.sessions:
            if session.disconnected.called:
                continue
            try:
                drop_transport(session)
                yield within(session.disconnected, 2.0)
            except Exception:  # pragma: no cover - best effort
                pass


@pytest_twisted.async_yield_fixture
async def harness():
    rr = await start_router(advanced_config())
    h = Harness(rr)
    try:
        yield h
    finally:
        await h.cleanup()
        await rr.stop()
