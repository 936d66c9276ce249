"""The dealer: routes calls from callers to the callees that registered procedures.

It owns the realm's registrations and every call in flight. Each call in flight is one
:class:`Invocation`, kept in two tables (by callee and invocation id; by caller and call
request id) and finished exactly once, by :meth:`Dealer._finish`: with the final RESULT,
an ERROR, a timeout, a cancel, or the departure of its caller or callee. Anything the
callee sends for a finished invocation is dropped.

Advanced profile: progressive call results, call timeout, call canceling (skip, kill,
killnowait), caller identification, shared registrations (single, roundrobin, random,
first, last), pattern-based registrations (exact, prefix, wildcard), registration
revocation, call rerouting (``wamp.error.unavailable``), progressive call invocations,
payload passthru mode.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.logger import Logger

from promisifier.router import request_options as opt
from promisifier.router.counters import LatencyHistogram
from promisifier.router.matching import UriIndex, covers, iso_8601
from promisifier.router.passthru import PassthruError, passthru_attributes, supports_passthru
from promisifier.router.realm_view import RealmView
from promisifier.wire import LIMIT_EXCEEDED, ErrorURI, is_valid_uri, random_id
from promisifier.wire.messages import (
    CALL,
    ERROR,
    INTERRUPT,
    INVOCATION,
    REGISTER,
    REGISTERED,
    RESULT,
    UNREGISTER,
    UNREGISTERED,
    Message,
)
from promisifier.wire.policies import CANCEL_MODES, INVOKE_POLICIES, MATCH_POLICIES

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from promisifier.router.clock import DelayedCall
    from promisifier.router.routed import RoutedSession

log = Logger(namespace="promisifier.router.dealer")


#: the dealer features announced in WELCOME (meta API features are added by the realm)
DEALER_FEATURES = {
    "progressive_call_results": True,
    "call_timeout": True,
    "call_canceling": True,
    "caller_identification": True,
    "shared_registration": True,
    "pattern_based_registration": True,
    "registration_revocation": True,
    "call_reroute": True,
    "progressive_call_invocations": True,
    "payload_passthru_mode": True,
}

#: request ids of progressive invocations answered early, remembered per caller
MAX_ENDED_STREAMS = 256


def _reroute_order(
    registration: RouterRegistration, unavailable: RoutedSession, tried: list[Any]
) -> list[RoutedSession]:
    """The callees a call answered ``wamp.error.unavailable`` by ``unavailable`` may go to
    next, in the order the invoke policy picks them (rpc_call_rerouting, Rerouting Rules):
    none for single, the following ones for roundrobin and first (round the queue), the
    preceding ones for last, the others in random order for random."""
    callees = registration.callees
    invoke = registration.invoke
    if invoke == "single":
        return []
    if invoke == "random":
        others = [callee for callee in callees if callee not in tried]
        random.shuffle(others)
        return others
    count = len(callees)
    start = callees.index(unavailable) if unavailable in callees else -1
    step = -1 if invoke == "last" else 1
    order = (callees[(start + step * offset) % count] for offset in range(1, count + 1))
    return [callee for callee in order if callee not in tried]


class DealerLink(Protocol):
    """Where a dealer reaches beyond its own router (the other nodes of a cluster): it says
    which procedures this router has callees for. The other nodes' callees appear in its
    registrations as sessions whose ``remote`` is True (see :meth:`Dealer.link_callee`)."""

    def register(self, realm: str, uri: str, match: str, invoke: str) -> Deferred[str | None]:
        """This router has a first callee for ``uri``: fires with None (go on) or with the
        invoke policy of the registration elsewhere it conflicts with."""

    def unregister(self, realm: str, uri: str, match: str) -> None:
        """This router's last callee for ``uri`` is gone."""

    def registration_id(self, realm: str, uri: str, match: str) -> int:
        """The id of the registration of ``uri`` (the same on every node)."""


class DealerMeta(Protocol):
    """What the dealer tells and asks the meta API of its realm
    (:class:`~promisifier.router.meta.MetaApi`)."""

    @property
    def procedures(self) -> Mapping[str, object]:
        """The procedures the meta API serves (``wamp.*`` and the router's own)."""
        ...

    @property
    def router_procedures(self) -> tuple[str, ...]:
        """The router's own procedures outside ``wamp.``: no registration may cover them."""
        ...

    def call(self, caller: RoutedSession, message: Message) -> None:
        """Answer a CALL of one of :attr:`procedures`."""

    def registration_created(self, session: RoutedSession, registration: RouterRegistration) -> None: ...

    def registered(self, session: RoutedSession, registration: RouterRegistration) -> None: ...

    def unregistered(self, session: RoutedSession, registration: RouterRegistration) -> None: ...

    def registration_deleted(self, session: RoutedSession, registration: RouterRegistration) -> None: ...


class DealerRealm(RealmView, Protocol):
    """The realm as its dealer sees it."""

    @property
    def meta(self) -> DealerMeta: ...


class RemoteCallee(Protocol):
    """A session standing for another node's callees (``remote`` is True): the dealer hands
    it the whole call, caller included, instead of sending it an INVOCATION."""

    def invoke(self, invocation: Invocation, message: Message) -> bool:
        """Forward the call; False when it cannot be encoded."""


class RouterRegistration:
    """A procedure URI (or pattern) and the callees registered for it, in order of registration."""

    __slots__ = ("id", "uri", "match", "invoke", "callees", "created", "disclosing", "_next", "calls", "errors")

    def __init__(self, registration_id: int, uri: str, match: str, invoke: str, created: float) -> None:
        self.id = registration_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.callees: list[RoutedSession] = []
        self.created = created
        #: callees that asked for caller disclosure (REGISTER.Options.disclose_caller)
        self.disclosing: set[RoutedSession] = set()
        self._next = 0
        #: calls routed to its callees (INVOCATIONs sent)
        self.calls = 0
        #: of those, calls that ended without a result: the callee's ERROR, a timeout, the callee left
        self.errors = 0

    def pick_callee(self) -> RoutedSession:
        """The callee the next call goes to, by the registration's invoke policy."""
        callees = self.callees
        invoke = self.invoke
        if invoke == "roundrobin":
            index = self._next % len(callees)
            self._next = index + 1
            return callees[index]
        if invoke == "random":
            return random.choice(callees)
        if invoke == "last":
            return callees[-1]
        return callees[0]  # single, first

    def pick_local_callee(self) -> RoutedSession | None:
        """A callee of this router (not another node's), by the invoke policy; None if
        there is none."""
        local = [callee for callee in self.callees if not callee.remote]
        if not local:
            return None
        if self.invoke == "random":
            return random.choice(local)
        if self.invoke == "last":
            return local[-1]
        if self.invoke == "roundrobin":
            index = self._next % len(local)
            self._next = index + 1
            return local[index]
        return local[0]

    def has_local_callee(self) -> bool:
        return any(not callee.remote for callee in self.callees)

    def details(self) -> dict[str, Any]:
        """The registration as the meta API describes it."""
        created = iso_8601(self.created)
        return {"id": self.id, "created": created, "uri": self.uri, "match": self.match, "invoke": self.invoke}


#: the former name (the client has a Registration handle of its own)
Registration = RouterRegistration


class Invocation:
    """One call in flight: from the caller's CALL to the callee's final answer."""

    __slots__ = (
        "id",
        "caller",
        "call_request_id",
        "callee",
        "registration",
        "progress",
        "timeout",
        "timer",
        "started",
        "call",
        "disclose",
        "tried",
        "streaming",
    )

    def __init__(
        self,
        invocation_id: int,
        caller: RoutedSession,
        call_request_id: int,
        callee: RoutedSession,
        registration: RouterRegistration,
        progress: bool,
        started: float = 0.0,
    ) -> None:
        self.id = invocation_id
        self.caller = caller
        self.call_request_id = call_request_id
        self.callee = callee
        self.registration = registration
        #: the caller asked for progressive results
        self.progress = progress
        #: seconds allowed until the first result and between results (0: no timeout)
        self.timeout = 0.0
        self.timer: DelayedCall | None = None
        #: the router clock when the CALL arrived
        self.started = started
        #: the CALL message (its arguments go to the next callee if this one is unavailable)
        self.call: list[Any] = []
        #: the caller's identity is disclosed to every callee (disclose_me, or the role's rule)
        self.disclose = False
        #: callees that answered wamp.error.unavailable to this call (call rerouting)
        self.tried: list[RoutedSession] | None = None
        #: a progressive invocation whose last chunk (CALL without progress) is yet to come
        self.streaming = False


class Dealer:
    """RPC routing for one realm."""

    def __init__(self, realm: DealerRealm) -> None:
        self.realm = realm
        self._index: UriIndex[RouterRegistration] = UriIndex()
        self._by_id: dict[int, RouterRegistration] = {}
        # per-session tables, created on attach and removed on detach
        self._registrations_of: dict[RoutedSession, dict[int, RouterRegistration]] = {}
        self._invocations_of: dict[RoutedSession, dict[int, Invocation]] = {}
        self._calls_of: dict[RoutedSession, dict[int, Invocation]] = {}
        #: request ids of progressive invocations answered before their last chunk, per caller
        self._ended_streams_of: dict[RoutedSession, dict[int, None]] = {}
        self._seconds = realm.clock.seconds
        # Calls by outcome (promisifier.router.counters.CALL_OUTCOMES): plain ints, read by
        # the status page and the metrics when they are asked (results: see calls_result).
        self.calls_error = 0
        self.calls_timeout = 0
        self.calls_canceled = 0
        self.calls_callee_gone = 0
        self.calls_caller_gone = 0
        self.calls_rejected = 0
        #: seconds from CALL to the final RESULT or ERROR (router clock)
        self.call_latency = LatencyHistogram()
        #: the other nodes of a cluster (None: this router is alone)
        self.link: DealerLink | None = None

    @property
    def calls_result(self) -> int:
        """Calls answered with a final RESULT (every latency observation that was not an ERROR)."""
        return self.call_latency.count - self.calls_error

    def call_counts(self) -> dict[str, int]:
        """Calls since start by outcome (see :data:`promisifier.router.counters.CALL_OUTCOMES`)."""
        return {
            "result": self.calls_result,
            "error": self.calls_error,
            "timeout": self.calls_timeout,
            "canceled": self.calls_canceled,
            "callee_gone": self.calls_callee_gone,
            "caller_gone": self.calls_caller_gone,
            "rejected": self.calls_rejected,
        }

    # -- state ----------------------------------------------------------------------

    @property
    def registration_count(self) -> int:
        """Number of registrations in the realm."""
        return len(self._by_id)

    @property
    def pending_call_count(self) -> int:
        """Number of calls in flight in the realm."""
        return sum(map(len, self._calls_of.values()))

    def registrations(self) -> list[RouterRegistration]:
        """All registrations of the realm."""
        return list(self._by_id.values())

    def registration(self, registration_id: int) -> RouterRegistration | None:
        """The registration with this id, or None."""
        return self._by_id.get(registration_id)

    def lookup(self, uri: str, match: str = "exact") -> RouterRegistration | None:
        """The registration of exactly (uri, match), or None."""
        return self._index.get(uri, match)

    def match(self, uri: str) -> RouterRegistration | None:
        """The registration a call to ``uri`` would go to, or None."""
        return self._index.best(uri)

    def registrations_by_policy(self) -> dict[str, list[int]]:
        """Registration ids grouped by match policy (``wamp.registration.list``)."""
        return {match: [r.id for r in self._index.items(match)] for match in MATCH_POLICIES}

    def pending_calls_of(self, session: RoutedSession) -> int:
        """Calls in flight that ``session`` made."""
        return len(self._calls_of.get(session, ()))

    def attached(self, session: RoutedSession) -> bool:
        """True from :meth:`attach` until :meth:`detach` of ``session``."""
        return session in self._calls_of

    def attach(self, session: RoutedSession) -> None:
        """Make room for a session that joined the realm."""
        self._registrations_of[session] = {}
        self._invocations_of[session] = {}
        self._calls_of[session] = {}

    def detach(self, session: RoutedSession, why: str = "callee left before answering") -> None:
        """Forget a session that left: its registrations, and its calls as callee (their
        callers get ERROR ``wamp.error.canceled`` saying ``why``) and caller."""
        for registration in self._registrations_of.pop(session, {}).values():
            self._remove_callee(registration, session)
        for invocation in list(self._invocations_of.get(session, {}).values()):
            self._finish(invocation)
            self.calls_callee_gone += 1
            invocation.registration.errors += 1
            if invocation.caller is not session:
                invocation.caller.send_error(CALL, invocation.call_request_id, ErrorURI.CANCELED, [why])
        del self._invocations_of[session]
        for invocation in list(self._calls_of.get(session, {}).values()):
            if self._finish(invocation):
                self.calls_caller_gone += 1
            self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
        del self._calls_of[session]
        self._ended_streams_of.pop(session, None)

    def cancel_all(self, why: str) -> None:
        """Fail every call in flight: callers get ERROR wamp.error.canceled, callees an INTERRUPT."""
        for invocations in list(self._invocations_of.values()):
            for invocation in list(invocations.values()):
                self._finish(invocation)
                self.calls_canceled += 1
                self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
                invocation.caller.send_error(CALL, invocation.call_request_id, ErrorURI.CANCELED, [why])

    # -- registrations ----------------------------------------------------------------

    def on_register(self, session: RoutedSession, message: Message) -> None:
        """REGISTER: [64, Request|id, Options|dict, Procedure|uri]."""
        realm = self.realm
        if realm.authorizer.open or realm.authorized(
            session, "register", message[3], message, self._register, message[2].get("match", "exact")
        ):
            self._register(session, message)

    def _register(self, session: RoutedSession, message: Message) -> None:
        request_id, options, procedure = message[1], message[2], message[3]
        try:
            match = opt.choice(options, "match", MATCH_POLICIES, "exact")
            invoke = opt.choice(options, "invoke", INVOKE_POLICIES, "single")
            disclose_caller = opt.flag(options, "disclose_caller")
        except opt.OptionError as error:
            session.send_error(REGISTER, request_id, ErrorURI.INVALID_ARGUMENT, [str(error)])
            return
        if (
            not is_valid_uri(procedure, self.realm.strict_uris, match != "exact")
            or procedure.startswith("wamp.")
            or any(covers(procedure, match, served) for served in self.realm.meta.router_procedures)
        ):
            session.send_error(REGISTER, request_id, ErrorURI.INVALID_URI, [f"invalid procedure URI {procedure!r}"])
            return
        registration = self._index.get(procedure, match)
        if self.link is not None and (registration is None or not registration.has_local_callee()):
            # the first callee of this router: registered cluster-wide first (atomically)
            d = self.link.register(self.realm.name, procedure, match, invoke)
            d.addCallback(self._registered_elsewhere, session, request_id, procedure, match, invoke, disclose_caller)
            return
        self._add_callee(session, request_id, procedure, match, invoke, disclose_caller)

    def _registered_elsewhere(
        self,
        conflict: str | None,
        session: RoutedSession,
        request_id: int,
        procedure: str,
        match: str,
        invoke: str,
        disclose_caller: bool,
    ) -> None:
        if session not in self._registrations_of:
            pass  # the session left meanwhile
        elif conflict is not None:
            session.send_error(
                REGISTER,
                request_id,
                ErrorURI.PROCEDURE_ALREADY_EXISTS,
                [f"procedure {procedure!r} is already registered on another node with invoke {conflict!r}"],
            )
            return
        else:
            self._add_callee(session, request_id, procedure, match, invoke, disclose_caller)
        registration = self._index.get(procedure, match)
        if self.link is not None and (registration is None or not registration.has_local_callee()):
            self.link.unregister(self.realm.name, procedure, match)  # nothing of it is left here

    def _add_callee(
        self,
        session: RoutedSession,
        request_id: int,
        procedure: str,
        match: str,
        invoke: str,
        disclose_caller: bool,
    ) -> None:
        if len(self._registrations_of[session]) >= self.realm.limits.max_registrations_per_session:
            session.send_error(REGISTER, request_id, LIMIT_EXCEEDED, ["max_registrations_per_session reached"])
            return
        registration = self._index.get(procedure, match)
        if registration is not None:
            if invoke == "single" or registration.invoke != invoke:
                session.send_error(
                    REGISTER,
                    request_id,
                    ErrorURI.PROCEDURE_ALREADY_EXISTS,
                    [f"procedure {procedure!r} is already registered with invoke {registration.invoke!r}"],
                )
                return
            if session in registration.callees:
                session.send_error(
                    REGISTER,
                    request_id,
                    ErrorURI.PROCEDURE_ALREADY_EXISTS,
                    [f"this session has already registered {procedure!r}"],
                )
                return
            created = False
        else:
            registration = RouterRegistration(
                self._new_registration_id(procedure, match), procedure, match, invoke, self.realm.clock.seconds()
            )
            self._index.add(procedure, match, registration)
            self._by_id[registration.id] = registration
            created = True
        registration.callees.append(session)
        if disclose_caller:
            registration.disclosing.add(session)
        self._registrations_of[session][registration.id] = registration
        session.send([REGISTERED, request_id, registration.id])
        meta = self.realm.meta
        if created:
            meta.registration_created(session, registration)
        meta.registered(session, registration)

    def on_unregister(self, session: RoutedSession, message: Message) -> None:
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
        session.send([UNREGISTERED, request_id])
        self._remove_callee(registration, session)

    def remove_callee(
        self, registration: RouterRegistration, session: RoutedSession, reason: str | None = None
    ) -> bool:
        """Revoke ``session``'s registration (``wamp.registration.remove_callee``); False if it
        held none. A callee that announced ``registration_revocation`` is told with
        UNREGISTERED (request 0, the registration and the reason); calls in flight go on."""
        if self._registrations_of.get(session, {}).pop(registration.id, None) is None:
            return False
        if session.has_feature("callee", "registration_revocation"):
            details: dict[str, Any] = {"registration": registration.id}
            if reason is not None:
                details["reason"] = reason
            session.send([UNREGISTERED, 0, details])
        self._remove_callee(registration, session)
        return True

    def _remove_callee(self, registration: RouterRegistration, session: RoutedSession) -> None:
        try:
            registration.callees.remove(session)
        except ValueError:
            return
        registration.disclosing.discard(session)
        remote = session.remote
        meta = self.realm.meta
        if not remote:
            meta.unregistered(session, registration)
        if not registration.callees:
            del self._by_id[registration.id]
            self._index.remove(registration.uri, registration.match)
            if not remote:
                meta.registration_deleted(session, registration)
        if self.link is not None and not remote and not registration.has_local_callee():
            self.link.unregister(self.realm.name, registration.uri, registration.match)

    def link_callee(self, callee: RoutedSession, uri: str, match: str, invoke: str) -> bool:
        """Add another node's callees (one ``remote`` session standing for them) to the
        registration of ``uri``, made if needed; no REGISTERED, no meta events. False when
        it conflicts with the registration here (different invoke policy, or ``single``)."""
        registration = self._index.get(uri, match)
        if registration is None:
            registration_id = self._new_registration_id(uri, match)
            registration = RouterRegistration(registration_id, uri, match, invoke, self.realm.clock.seconds())
            self._index.add(uri, match, registration)
            self._by_id[registration.id] = registration
        elif callee in registration.callees:
            return True
        elif registration.invoke != invoke or invoke == "single":
            return False
        registration.callees.append(callee)
        self._registrations_of[callee][registration.id] = registration
        return True

    def unlink_callee(self, callee: RoutedSession, uri: str, match: str) -> None:
        """Undo :meth:`link_callee` (calls in flight to it go on)."""
        registration = self._index.get(uri, match)
        if registration is not None and self._registrations_of.get(callee, {}).pop(registration.id, None) is not None:
            self._remove_callee(registration, callee)

    def _new_registration_id(self, uri: str, match: str) -> int:
        if self.link is not None:
            wanted = self.link.registration_id(self.realm.name, uri, match)
            if wanted not in self._by_id:
                return wanted
        while True:
            registration_id = random_id()
            if registration_id not in self._by_id:
                return registration_id

    # -- calls ----------------------------------------------------------------------

    def on_call(self, caller: RoutedSession, message: Message) -> None:
        """CALL: [48, Request|id, Options|dict, Procedure|uri, Arguments|list, ArgumentsKw|dict]."""
        realm = self.realm
        if realm.authorizer.open or realm.authorized(caller, "call", message[3], message, self._call):
            self._call(caller, message)

    def route_call(self, caller: RoutedSession, message: Message) -> None:
        """A CALL another node forwarded (its node authorized it); ``caller`` stands for
        the session that made it there. It goes to this router's own callees only."""
        self._call(caller, message)

    def _call(self, caller: RoutedSession, message: Message) -> None:
        request_id, options, procedure = message[1], message[2], message[3]
        calls = self._calls_of[caller]
        in_flight = calls.get(request_id)
        if in_flight is not None:
            self._continue_call(caller, in_flight, message)
            return
        ended = self._ended_streams_of.get(caller)
        if ended is not None and request_id in ended:
            # The continuation of a progressive invocation the callee already answered: the
            # caller gets (or got) that answer; the CALL is discarded (Continuations on
            # Completed Calls).
            return
        if procedure.startswith("wamp."):
            self.realm.meta.call(caller, message)
            return
        registration = self._index.best(procedure)
        if registration is None:
            # Procedures the router serves itself (promisifier.session.trace): no
            # registration, exact or pattern, can cover them (see _register).
            meta = self.realm.meta
            if procedure in meta.procedures:
                meta.call(caller, message)
                return
            self.calls_rejected += 1
            if is_valid_uri(procedure, self.realm.strict_uris):
                caller.send_error(
                    CALL, request_id, ErrorURI.NO_SUCH_PROCEDURE, [f"no callee registered for {procedure!r}"]
                )
            else:
                caller.send_error(CALL, request_id, ErrorURI.INVALID_URI, [f"invalid procedure URI {procedure!r}"])
            return
        details: dict[str, Any] = {}
        progress = False
        streaming = False
        timeout = 0.0
        passthru = None
        if options:
            try:
                progress = opt.flag(options, "receive_progress")
                timeout = opt.milliseconds(options, "timeout")
                disclose = opt.flag(options, "disclose_me")
                streaming = opt.flag(options, "progress")
                passthru = passthru_attributes(options)
            except (opt.OptionError, PassthruError) as error:
                self.calls_rejected += 1
                caller.send_error(CALL, request_id, ErrorURI.INVALID_ARGUMENT, [str(error)])
                return
            if progress:
                details["receive_progress"] = True
            if streaming:
                # A caller that did not announce progressive_call_invocations is served all
                # the same (the specification says protocol error): Wampy.js 8 streams with
                # progressiveCall without announcing it, and the request is unambiguous.
                details["progress"] = True
            if passthru is not None:
                if not supports_passthru(caller, "caller"):
                    caller.protocol_violation("CALL with ppt_scheme: the caller did not announce payload_passthru_mode")
                    return
                details.update(passthru)
        else:
            disclose = False
        limits = self.realm.limits
        if len(calls) >= limits.max_pending_calls_per_caller:
            self.calls_rejected += 1
            caller.send_error(CALL, request_id, LIMIT_EXCEEDED, ["max_pending_calls_per_caller reached"])
            return
        callee = registration.pick_callee()
        remote = callee.remote  # another node's callees (a cluster)
        if remote and caller.remote:
            # forwarded from another node: never forwarded again
            local_callee = registration.pick_local_callee()
            if local_callee is None:
                self.calls_rejected += 1
                caller.send_error(CALL, request_id, ErrorURI.NO_ELIGIBLE_CALLEE, [f"no callee for {procedure!r} here"])
                return
            callee, remote = local_callee, False
        if streaming and not (
            callee.has_feature("callee", "progressive_call_invocations")
            and callee.has_feature("callee", "call_canceling")
        ):
            self.calls_rejected += 1
            caller.send_error(
                CALL,
                request_id,
                ErrorURI.FEATURE_NOT_SUPPORTED,
                ["the callee does not support progressive call invocations (with call canceling)"],
            )
            return
        if passthru is not None and not supports_passthru(callee, "callee"):
            self.calls_rejected += 1
            caller.send_error(
                CALL, request_id, ErrorURI.FEATURE_NOT_SUPPORTED, ["the callee does not support payload passthru mode"]
            )
            return
        invocations = self._invocations_of[callee]
        if callee.connection.congested:
            self.calls_rejected += 1
            caller.send_error(
                CALL, request_id, LIMIT_EXCEEDED, ["the callee is a slow consumer: too many bytes queued for it"]
            )
            return
        if len(invocations) >= limits.max_pending_invocations_per_callee:
            self.calls_rejected += 1
            caller.send_error(
                CALL, request_id, LIMIT_EXCEEDED, ["the callee has max_pending_invocations_per_callee in flight"]
            )
            return
        disclose = disclose or self.realm.authorizer.discloses(caller, "caller", procedure)
        if disclose or callee in registration.disclosing:
            details["caller"] = caller.session_id
            details["caller_authid"] = caller.authid
            details["caller_authrole"] = caller.authrole
        if registration.match != "exact":
            details["procedure"] = procedure
        invocation = Invocation(
            callee.next_invocation_id(), caller, request_id, callee, registration, progress, self._seconds()
        )
        # args and kwargs are forwarded as received: the tail of the CALL list is reused.
        invocation_message = [INVOCATION, invocation.id, registration.id, details, *message[4:]]
        if not (
            cast(RemoteCallee, callee).invoke(invocation, invocation_message)
            if remote
            else callee.send(invocation_message)
        ):
            self.calls_rejected += 1
            caller.send_error(
                CALL,
                request_id,
                ErrorURI.INVALID_ARGUMENT,
                [f"arguments cannot be encoded for the callee: {callee.last_send_error}"],
            )
            return
        invocation.call = message
        invocation.disclose = disclose
        invocation.streaming = streaming
        registration.calls += 1
        invocations[invocation.id] = invocation
        calls[request_id] = invocation
        if timeout:
            invocation.timeout = timeout / 1000.0
            invocation.timer = self.realm.clock.callLater(invocation.timeout, self._on_timeout, invocation)

    # -- progressive call invocations --------------------------------------------------

    def _continue_call(self, caller: RoutedSession, invocation: Invocation, message: list[Any]) -> None:
        """A CALL with the request id of a call in flight: the next chunk of a progressive
        invocation, to the same callee under the same invocation id; without
        ``progress: true`` it is the last one."""
        if not invocation.streaming or message[3] != invocation.call[3]:
            caller.protocol_violation(
                f"CALL {message[1]}: request id of a call in flight that is not a progressive invocation of {message[3]!r}"
            )
            return
        streaming = message[2].get("progress") is True
        if not streaming:
            invocation.streaming = False
        callee = invocation.callee
        registration = invocation.registration
        details = {"progress": True} if streaming else {}
        if not callee.send([INVOCATION, invocation.id, registration.id, details, *message[4:]]):
            self._finish(invocation)
            self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
            caller.send_error(
                CALL,
                invocation.call_request_id,
                ErrorURI.INVALID_ARGUMENT,
                [f"arguments cannot be encoded for the callee: {callee.last_send_error}"],
            )

    def _stream_ended_early(self, invocation: Invocation) -> None:
        """Remember the request id of a progressive invocation answered before its last
        chunk, so that the chunks still on their way are discarded (a bounded table)."""
        caller = invocation.caller
        if caller not in self._calls_of:
            return  # the caller left: nothing more comes from it
        ended = self._ended_streams_of.setdefault(caller, {})
        ended[invocation.call_request_id] = None
        if len(ended) > MAX_ENDED_STREAMS:
            del ended[next(iter(ended))]

    # -- call rerouting ---------------------------------------------------------------

    def _reroute(self, unavailable: Invocation, deadline: float | None) -> None:
        """The callee of ``unavailable`` (already finished) answered ``wamp.error.unavailable``:
        the call goes to the next callee by the registration's invoke policy, as if that callee
        did not exist (rpc_call_rerouting); when none is left, the caller gets
        ``wamp.error.no_available_callee``. A call timeout keeps its deadline."""
        tried = unavailable.tried if unavailable.tried is not None else []
        tried.append(unavailable.callee)
        registration, caller, message = unavailable.registration, unavailable.caller, unavailable.call
        limit = self.realm.limits.max_pending_invocations_per_callee
        for callee in _reroute_order(registration, unavailable.callee, tried):
            invocations = self._invocations_of[callee]
            if callee.connection.congested or len(invocations) >= limit:
                continue
            invocation = Invocation(
                callee.next_invocation_id(),
                caller,
                unavailable.call_request_id,
                callee,
                registration,
                unavailable.progress,
                unavailable.started,
            )
            details: dict[str, Any] = {"receive_progress": True} if unavailable.progress else {}
            if unavailable.disclose or callee in registration.disclosing:
                details["caller"] = caller.session_id
                details["caller_authid"] = caller.authid
                details["caller_authrole"] = caller.authrole
            if registration.match != "exact":
                details["procedure"] = message[3]
            passthru = passthru_attributes(message[2])
            if passthru is not None:
                if not supports_passthru(callee, "callee"):
                    continue
                details.update(passthru)
            if not callee.send([INVOCATION, invocation.id, registration.id, details, *message[4:]]):
                continue
            invocation.call, invocation.disclose, invocation.tried = message, unavailable.disclose, tried
            invocation.timeout = unavailable.timeout
            registration.calls += 1
            invocations[invocation.id] = invocation
            self._calls_of[caller][invocation.call_request_id] = invocation
            if deadline is not None:
                invocation.timer = self.realm.clock.callLater(
                    max(0.0, deadline - self._seconds()), self._on_timeout, invocation
                )
            return
        self.calls_error += 1
        caller.send_error(
            CALL,
            unavailable.call_request_id,
            ErrorURI.NO_AVAILABLE_CALLEE,
            [f"every callee of {message[3]!r} is unavailable"],
        )

    def on_yield(self, callee: RoutedSession, message: Message) -> None:
        """YIELD: [70, INVOCATION.Request|id, Options|dict, Arguments|list, ArgumentsKw|dict]."""
        invocation = self._invocations_of[callee].get(message[1])
        if invocation is None:
            # The call was answered, cancelled, timed out, or its caller left.
            log.debug(
                "session {session_id}: YIELD for unknown invocation {id}", session_id=callee.session_id, id=message[1]
            )
            return
        options = message[2]
        details: dict[str, Any] = {}
        if options:
            if "ppt_scheme" in options or "enc_algo" in options:
                passthru = self._result_passthru(callee, invocation, options)
                if passthru is None:
                    return
                details = passthru
            if options.get("progress") is True:
                if invocation.progress:
                    # The timeout counts from the last result (progressive_call_results, Timeouts).
                    timer = invocation.timer
                    if timer is not None:
                        timer.reset(invocation.timeout)
                    details["progress"] = True
                    self._forward_result(invocation, [RESULT, invocation.call_request_id, details, *message[3:]])
                return
        self._finish(invocation)
        # The final RESULT: one observation of the latency (its count, less the calls that
        # ended in ERROR, is the count of results: no counter of its own on this path).
        latency = self._seconds() - invocation.started
        histogram = self.call_latency
        histogram.counts[bisect_left(histogram.bounds, latency)] += 1
        histogram.sum += latency
        self._forward_result(invocation, [RESULT, invocation.call_request_id, details, *message[3:]])

    def _result_passthru(
        self, callee: RoutedSession, invocation: Invocation, options: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The RESULT details for a YIELD with a passthru payload, or None when the call
        ended instead (the callee did not announce the feature: protocol violation; the
        caller did not: it gets ERROR wamp.error.feature_not_supported)."""
        try:
            passthru = passthru_attributes(options)
        except PassthruError as error:
            callee.protocol_violation(f"YIELD: {error}")
            return None
        if not supports_passthru(callee, "callee"):
            callee.protocol_violation("YIELD with ppt_scheme: the callee did not announce payload_passthru_mode")
            return None
        caller = invocation.caller
        if not supports_passthru(caller, "caller"):
            self._finish(invocation)
            self.calls_error += 1
            self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
            caller.send_error(
                CALL,
                invocation.call_request_id,
                ErrorURI.FEATURE_NOT_SUPPORTED,
                ["the callee answered with a passthru payload, which this caller did not announce it supports"],
            )
            return None
        return dict(passthru or {})

    def _forward_result(self, invocation: Invocation, result: Message) -> None:
        if not invocation.caller.send(result):
            self._finish(invocation)
            self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
            invocation.caller.send_error(
                CALL,
                invocation.call_request_id,
                ErrorURI.INVALID_ARGUMENT,
                [f"result cannot be encoded for the caller: {invocation.caller.last_send_error}"],
            )

    def on_invocation_error(self, callee: RoutedSession, message: Message) -> None:
        """ERROR for an INVOCATION: [8, 68, Request|id, Details|dict, Error|uri, Arguments, ArgumentsKw]."""
        invocation = self._invocations_of[callee].get(message[2])
        if invocation is None:
            log.debug(
                "session {session_id}: ERROR for unknown invocation {id}", session_id=callee.session_id, id=message[2]
            )
            return
        error_uri = message[4]
        if (
            error_uri == ErrorURI.UNAVAILABLE
            and invocation.caller in self._calls_of
            and invocation.call[2].get("progress") is not True
        ):
            timer = invocation.timer
            deadline = timer.getTime() if timer is not None and timer.active() else None
            self._finish(invocation)
            self._reroute(invocation, deadline)
            return
        self._finish(invocation)
        self.calls_error += 1
        invocation.registration.errors += 1
        self.call_latency.observe(self._seconds() - invocation.started)
        caller = invocation.caller
        if not is_valid_uri(error_uri):
            caller.send_error(
                CALL,
                invocation.call_request_id,
                ErrorURI.INVALID_URI,
                [f"callee answered with an invalid error URI {error_uri!r}"],
            )
            return
        try:
            error_details = passthru_attributes(message[3]) or {}
        except PassthruError:
            error_details = {}
        if not caller.send([ERROR, CALL, invocation.call_request_id, error_details, error_uri, *message[5:]]):
            caller.send_error(
                CALL,
                invocation.call_request_id,
                ErrorURI.INVALID_ARGUMENT,
                ["error payload cannot be encoded for the caller"],
            )

    def on_cancel(self, caller: RoutedSession, message: Message) -> None:
        """CANCEL: [49, CALL.Request|id, Options|dict]."""
        request_id, options = message[1], message[2]
        invocation = self._calls_of[caller].get(request_id)
        try:
            mode = opt.choice(options, "mode", CANCEL_MODES, "killnowait")
        except opt.OptionError as error:
            # ERROR may not answer a CANCEL (autobahn drops the connection on one): the
            # call ends, killnowait, with the ERROR naming the option.
            if invocation is not None:
                self._finish(invocation)
                self.calls_canceled += 1
                self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
                caller.send_error(CALL, request_id, ErrorURI.INVALID_ARGUMENT, [str(error)])
            return
        if invocation is None:
            return  # already answered: nothing to cancel
        if not invocation.callee.has_feature("callee", "call_canceling"):
            mode_effective = "skip"
        else:
            mode_effective = mode
        if mode_effective == "kill":
            # The caller's ERROR comes with the callee's answer to the INTERRUPT.
            self._interrupt(invocation, "kill", ErrorURI.CANCELED)
            return
        self._finish(invocation)
        self.calls_canceled += 1
        if mode_effective == "killnowait":
            self._interrupt(invocation, "killnowait", ErrorURI.CANCELED)
        if mode == "kill" or self.realm.config.cancel_reply == "always":
            caller.send_error(CALL, request_id, ErrorURI.CANCELED, [f"call cancelled (mode {mode})"])

    def redirect(self, invocation: Invocation, message: Message, why: str) -> None:
        """``invocation`` never reached its callee (another node, found gone when the call
        was handed to it): give it to another callee of its registration, the caller none
        the wiser, or fail it with ``wamp.error.canceled`` saying ``why``. ``message`` is
        the INVOCATION it was sent."""
        gone = invocation.callee
        invocations = self._invocations_of.get(gone)
        if invocations is None or invocations.get(invocation.id) is not invocation:
            return  # answered, cancelled or timed out meanwhile
        registration = invocation.registration
        callee: RoutedSession | None = None
        for _ in range(len(registration.callees)):
            candidate = registration.pick_callee()
            if (
                candidate is not gone
                and not (candidate.remote and invocation.caller.remote)
                and getattr(candidate, "reachable", True)
            ):
                callee = candidate
                break
        if (
            callee is not None
            and len(self._invocations_of[callee]) < self.realm.limits.max_pending_invocations_per_callee
        ):
            del invocations[invocation.id]
            invocation.callee = callee
            invocation.id = callee.next_invocation_id()
            moved: Message = [INVOCATION, invocation.id, *message[2:]]
            if cast(RemoteCallee, callee).invoke(invocation, moved) if callee.remote else callee.send(moved):
                self._invocations_of[callee][invocation.id] = invocation
                return
            self._invocations_of[callee][invocation.id] = invocation  # for _finish
        if self._finish(invocation):
            self.calls_callee_gone += 1
            registration.errors += 1
            invocation.caller.send_error(CALL, invocation.call_request_id, ErrorURI.CANCELED, [why])

    def _on_timeout(self, invocation: Invocation) -> None:
        invocation.timer = None
        if not self._finish(invocation):
            return
        self.calls_timeout += 1
        invocation.registration.errors += 1
        self._interrupt(invocation, "killnowait", ErrorURI.TIMEOUT)
        invocation.caller.send_error(CALL, invocation.call_request_id, ErrorURI.TIMEOUT, ["call timed out"])

    def _interrupt(self, invocation: Invocation, mode: str, reason: str) -> None:
        # INTERRUPT only goes to callees that announced call_canceling: others (autobahn-js
        # among them) drop the connection on a message they do not expect.
        callee = invocation.callee
        if callee in self._invocations_of and callee.has_feature("callee", "call_canceling"):
            callee.send([INTERRUPT, invocation.id, {"mode": mode, "reason": reason}])

    def _finish(self, invocation: Invocation) -> bool:
        """Remove a call in flight from both tables; False if it was already finished."""
        invocations = self._invocations_of.get(invocation.callee)
        if invocations is None or invocations.pop(invocation.id, None) is None:
            return False
        calls = self._calls_of.get(invocation.caller)
        if calls is not None:
            calls.pop(invocation.call_request_id, None)
        timer = invocation.timer
        if timer is not None:
            invocation.timer = None
            if timer.active():
                timer.cancel()
        if invocation.streaming:
            invocation.streaming = False
            self._stream_ended_early(invocation)
        return True
