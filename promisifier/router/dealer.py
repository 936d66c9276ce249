"""The dealer: routes calls from callers to the callees that registered procedures.

It owns the realm's registrations and every call in flight. Each call in flight has one
owner (an :class:`Invocation` kept in two tables: by callee and invocation id, by caller
and call request id) and ends exactly once: with a RESULT, an ERROR, or an ERROR
``wamp.error.canceled`` when its callee goes away. A caller that goes away takes its calls
with it: late YIELDs for them are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from promisifier.wire import ErrorURI, is_valid_uri, random_id
from promisifier.wire.messages import (
    CALL,
    INVOCATION,
    REGISTER,
    REGISTERED,
    RESULT,
    UNREGISTER,
    UNREGISTERED,
)

if TYPE_CHECKING:
    from promisifier.router.realm import Realm
    from promisifier.router.session import RouterSession

log = Logger(namespace="promisifier.router.dealer")


class Registration:
    """A procedure URI and the callee(s) registered for it."""

    __slots__ = ("id", "uri", "match", "invoke", "callees", "created")

    def __init__(self, registration_id: int, uri: str, match: str, invoke: str, created: float) -> None:
        self.id = registration_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.callees: list[RouterSession] = []
        self.created = created


class Invocation:
    """One call in flight: from the caller's CALL to the callee's final answer."""

    __slots__ = ("id", "caller", "call_request_id", "callee", "registration")

    def __init__(
        self,
        invocation_id: int,
        caller: RouterSession,
        call_request_id: int,
        callee: RouterSession,
        registration: Registration,
    ) -> None:
        self.id = invocation_id
        self.caller = caller
        self.call_request_id = call_request_id
        self.callee = callee
        self.registration = registration


class Dealer:
    """RPC routing for one realm."""

    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self._exact: dict[str, Registration] = {}
        self._by_id: dict[int, Registration] = {}
        # per-session tables, created on attach and removed on detach
        self._registrations_of: dict[RouterSession, dict[int, Registration]] = {}
        self._invocations_of: dict[RouterSession, dict[int, Invocation]] = {}
        self._calls_of: dict[RouterSession, dict[int, Invocation]] = {}

    # -- state ----------------------------------------------------------------------

    @property
    def registration_count(self) -> int:
        """Number of registrations in the realm."""
        return len(self._by_id)

    @property
    def pending_call_count(self) -> int:
        """Number of calls in flight in the realm."""
        return sum(len(calls) for calls in self._calls_of.values())

    def registrations(self) -> list[Registration]:
        """All registrations of the realm."""
        return list(self._by_id.values())

    def attach(self, session: RouterSession) -> None:
        """Make room for a session that joined the realm."""
        self._registrations_of[session] = {}
        self._invocations_of[session] = {}
        self._calls_of[session] = {}

    def detach(self, session: RouterSession) -> None:
        """Forget a session that left: its registrations, and its calls as callee and caller."""
        for registration in self._registrations_of.pop(session, {}).values():
            self._remove_callee(registration, session)
        for invocation in self._invocations_of.pop(session, {}).values():
            calls = self._calls_of.get(invocation.caller)
            if calls is not None:
                calls.pop(invocation.call_request_id, None)
                invocation.caller.send_error(
                    CALL,
                    invocation.call_request_id,
                    ErrorURI.CANCELED,
                    ["callee left before answering"],
                )
        for invocation in self._calls_of.pop(session, {}).values():
            invocations = self._invocations_of.get(invocation.callee)
            if invocations is not None:
                invocations.pop(invocation.id, None)

    # -- registrations ----------------------------------------------------------------

    def on_register(self, session: RouterSession, message: list) -> None:
        """REGISTER: [64, Request|id, Options|dict, Procedure|uri]."""
        request_id, options, procedure = message[1], message[2], message[3]
        match = options.get("match", "exact")
        invoke = options.get("invoke", "single")
        if match != "exact" or invoke != "single":
            session.send_error(
                REGISTER,
                request_id,
                ErrorURI.OPTION_NOT_ALLOWED,
                [f"match {match!r} with invoke {invoke!r} is not supported by this router"],
            )
            return
        if not self._valid_uri(procedure) or procedure.startswith("wamp."):
            session.send_error(REGISTER, request_id, ErrorURI.INVALID_URI, [f"invalid procedure URI {procedure!r}"])
            return
        if procedure in self._exact:
            session.send_error(
                REGISTER,
                request_id,
                ErrorURI.PROCEDURE_ALREADY_EXISTS,
                [f"procedure {procedure!r} is already registered"],
            )
            return
        registration = Registration(self._new_registration_id(), procedure, match, invoke, self.realm.clock.seconds())
        registration.callees.append(session)
        self._exact[procedure] = registration
        self._by_id[registration.id] = registration
        self._registrations_of[session][registration.id] = registration
        session.send([REGISTERED, request_id, registration.id])

    def on_unregister(self, session: RouterSession, message: list) -> None:
        """UNREGISTER: [66, Request|id, REGISTERED.Registration|id]."""
        request_id, registration_id = message[1], message[2]
        registration = self._registrations_of[session].pop(registration_id, None)
        if registration is None:
            session.send_error(
                UNREGISTER,
                request_id,
                ErrorURI.NO_SUCH_REGISTRATION,
                [f"no registration {registration_id} held by this session"],
            )
            return
        self._remove_callee(registration, session)
        session.send([UNREGISTERED, request_id])

    def _remove_callee(self, registration: Registration, session: RouterSession) -> None:
        try:
            registration.callees.remove(session)
        except ValueError:
            return
        if not registration.callees:
            del self._by_id[registration.id]
            if self._exact.get(registration.uri) is registration:
                del self._exact[registration.uri]

    def _new_registration_id(self) -> int:
        while True:
            registration_id = random_id()
            if registration_id not in self._by_id:
                return registration_id

    def _valid_uri(self, uri: str) -> bool:
        return is_valid_uri(uri, self.realm.strict_uris)

    # -- calls ----------------------------------------------------------------------

    def on_call(self, caller: RouterSession, message: list) -> None:
        """CALL: [48, Request|id, Options|dict, Procedure|uri, Arguments|list, ArgumentsKw|dict]."""
        request_id, procedure = message[1], message[3]
        registration = self._exact.get(procedure)
        if registration is None:
            if self._valid_uri(procedure):
                caller.send_error(CALL, request_id, ErrorURI.NO_SUCH_PROCEDURE, [f"no callee registered for {procedure!r}"])
            else:
                caller.send_error(CALL, request_id, ErrorURI.INVALID_URI, [f"invalid procedure URI {procedure!r}"])
            return
        callee = registration.callees[0]
        invocation = Invocation(callee.invocation_ids.next(), caller, request_id, callee, registration)
        # Forward args and kwargs as received: the list's tail is reused, not copied field by field.
        if not callee.send([INVOCATION, invocation.id, registration.id, {}, *message[4:]]):
            caller.send_error(
                CALL, request_id, ErrorURI.INVALID_ARGUMENT, ["arguments cannot be encoded for the callee"]
            )
            return
        self._invocations_of[callee][invocation.id] = invocation
        self._calls_of[caller][request_id] = invocation

    def on_yield(self, callee: RouterSession, message: list) -> None:
        """YIELD: [70, INVOCATION.Request|id, Options|dict, Arguments|list, ArgumentsKw|dict]."""
        invocation = self._invocations_of[callee].pop(message[1], None)
        if invocation is None:
            # The call was answered, cancelled, or its caller left: nothing waits for it.
            log.debug("session {session_id}: YIELD for unknown invocation {id}", session_id=callee.session_id, id=message[1])
            return
        caller = invocation.caller
        del self._calls_of[caller][invocation.call_request_id]
        if not caller.send([RESULT, invocation.call_request_id, {}, *message[3:]]):
            caller.send_error(
                CALL, invocation.call_request_id, ErrorURI.INVALID_ARGUMENT, ["result cannot be encoded for the caller"]
            )

    def on_invocation_error(self, callee: RouterSession, message: list) -> None:
        """ERROR for an INVOCATION: [8, 68, Request|id, Details|dict, Error|uri, Arguments, ArgumentsKw]."""
        invocation = self._invocations_of[callee].pop(message[2], None)
        if invocation is None:
            log.debug("session {session_id}: ERROR for unknown invocation {id}", session_id=callee.session_id, id=message[2])
            return
        caller = invocation.caller
        del self._calls_of[caller][invocation.call_request_id]
        error_uri = message[4]
        if not is_valid_uri(error_uri):
            caller.send_error(
                CALL, invocation.call_request_id, ErrorURI.INVALID_URI, [f"callee answered with an invalid error URI {error_uri!r}"]
            )
            return
        if not caller.send([message[0], CALL, invocation.call_request_id, {}, error_uri, *message[5:]]):
            caller.send_error(
                CALL, invocation.call_request_id, ErrorURI.INVALID_ARGUMENT, ["error payload cannot be encoded for the caller"]
            )
