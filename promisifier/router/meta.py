"""The WAMP meta API of a realm: meta events and meta procedures served by the router.

Meta events (``wamp.session.on_join``, ``wamp.registration.on_create``, ...) are
published on the realm like any event. Meta procedures (``wamp.session.count``,
``wamp.registration.list``, ...) are answered by the router itself; clients cannot
register procedures under ``wamp.``. Testaments (``wamp.session.add_testament``) are
events a session leaves to be published when it goes away.

The router also serves procedures of its own outside ``wamp.`` (:data:`ROUTER_PROCEDURES`):
``promisifier.session.trace(session_id, on, payloads=False)`` switches the message trace
of a session of the realm on or off (see :mod:`promisifier.router.trace`). Clients cannot
register these names either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from promisifier.router.history import HistoryError
from promisifier.router.trace import SessionTrace
from promisifier.wire import ErrorURI, is_valid_uri
from promisifier.wire.messages import CALL, RESULT, Message
from promisifier.wire.policies import MATCH_POLICIES

if TYPE_CHECKING:
    from promisifier.router.broker import Broker, RouterSubscription
    from promisifier.router.dealer import Dealer, RouterRegistration
    from promisifier.router.routed import RoutedSession

log = Logger(namespace="promisifier.router.meta")

#: meta API features announced in WELCOME for both the dealer and the broker
META_FEATURES = {"session_meta_api": True, "testament_meta_api": True}
DEALER_META_FEATURES = {**META_FEATURES, "registration_meta_api": True}
BROKER_META_FEATURES = {**META_FEATURES, "subscription_meta_api": True}

#: procedures the router serves outside ``wamp.``
ROUTER_PROCEDURES = ("promisifier.session.trace",)

#: in publishing order: without session resumption, "detached" testaments go before "destroyed"
TESTAMENT_SCOPES = ("detached", "destroyed")
#: a testament: the event (topic, args, kwargs) published when its session goes
Testament = tuple[str, list[Any], dict[str, Any]]


class MetaError(Exception):
    """A meta procedure failed: becomes ERROR ``uri`` with ``message`` for the caller."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri


def session_details(session: RoutedSession) -> dict[str, Any]:
    """A session as the meta API describes it: ``session.details()`` (kept for callers of
    the former function)."""
    return session.details()


class MetaLink(Protocol):
    """Where the meta API reaches beyond its own router (the other nodes of a cluster)."""

    def session_joined(self, realm: str, session_id: int, details: dict[str, Any]) -> None:
        """A session of this router joined the realm."""

    def session_left(self, realm: str, session_id: int) -> None:
        """A session of this router left the realm."""

    def sessions(self, realm: str) -> Deferred[list[dict[str, Any]]]:
        """The details of every session of the realm, on every node."""

    def testaments(self, realm: str, session_id: int, testaments: dict[str, list[Testament]]) -> None:
        """A session's testaments changed (published by another node if this one dies)."""

    def kill(self, realm: str, session_ids: list[int], reason: str, message: str, silently: bool) -> None:
        """Close these sessions of other nodes (found in :meth:`sessions` just before)."""

    def item_event(
        self, realm: str, topic: str, session_id: int, item: RouterRegistration | RouterSubscription
    ) -> None:
        """A registration or subscription meta event of a session of this router
        (``wamp.registration.on_create``, ...): the link publishes what the whole cluster
        should see (``on_create`` and ``on_delete`` only for the first and the last of all
        the nodes' sessions)."""


class MetaRealm(Protocol):
    """The realm as its meta API sees it (:class:`~promisifier.router.realm.Realm`)."""

    @property
    def name(self) -> str: ...

    @property
    def strict_uris(self) -> bool: ...

    @property
    def sessions(self) -> dict[int, RoutedSession]:
        """This router's sessions joined to the realm, by session id."""
        ...

    @property
    def dealer(self) -> Dealer: ...

    @property
    def broker(self) -> Broker: ...


class MetaApi:
    """Meta events and meta procedures of one realm."""

    #: the router's own procedures outside ``wamp.`` (no registration may cover them)
    router_procedures = ROUTER_PROCEDURES

    def __init__(self, realm: MetaRealm) -> None:
        self.realm = realm
        self._testaments: dict[RoutedSession, dict[str, list[Testament]]] = {}
        #: sessions closed by kill_all: they leave without testaments or on_leave events
        self._silenced: set[RoutedSession] = set()
        #: sessions whose messages are traced
        self.traces: dict[RoutedSession, SessionTrace] = {}
        #: the other nodes of a cluster (None: this router is alone)
        self.link: MetaLink | None = None
        self.procedures: dict[str, Callable[[RoutedSession, list[Any], dict[str, Any]], Any]] = {
            "wamp.session.count": self._session_count,
            "wamp.session.list": self._session_list,
            "wamp.session.get": self._session_get,
            "wamp.session.kill": self._session_kill,
            "wamp.session.kill_by_authid": self._session_kill_by_authid,
            "wamp.session.kill_by_authrole": self._session_kill_by_authrole,
            "wamp.session.kill_all": self._session_kill_all,
            "wamp.session.add_testament": self._add_testament,
            "wamp.session.flush_testaments": self._flush_testaments,
            "wamp.registration.list": lambda s, a, k: self.realm.dealer.registrations_by_policy(),
            "wamp.registration.lookup": self._registration_lookup,
            "wamp.registration.match": self._registration_match,
            "wamp.registration.get": lambda s, a, k: self._registration(a).details(),
            # this router's callees (another node's stand behind one remote session of no id)
            "wamp.registration.list_callees": lambda s, a, k: [
                c.session_id for c in self._registration(a).callees if not c.remote
            ],
            "wamp.registration.count_callees": lambda s, a, k: sum(
                1 for c in self._registration(a).callees if not c.remote
            ),
            "wamp.registration.remove_callee": self._registration_remove_callee,
            "wamp.subscription.list": lambda s, a, k: self.realm.broker.subscriptions_by_policy(),
            "wamp.subscription.lookup": self._subscription_lookup,
            "wamp.subscription.match": self._subscription_match,
            "wamp.subscription.get": lambda s, a, k: self._subscription(a).details(),
            "wamp.subscription.list_subscribers": lambda s, a, k: [
                x.session_id for x in self._subscription(a).subscribers
            ],
            "wamp.subscription.count_subscribers": lambda s, a, k: len(self._subscription(a).subscribers),
            "wamp.subscription.remove_subscriber": self._subscription_remove_subscriber,
            "wamp.subscription.get_events": self._subscription_get_events,
            "promisifier.session.trace": self._session_trace,
        }

    # -- calls --------------------------------------------------------------------------

    def call(self, caller: RoutedSession, message: Message) -> None:
        """Answer a CALL to a ``wamp.`` procedure."""
        request_id, procedure = message[1], message[3]
        handler = self.procedures.get(procedure)
        if handler is None:
            caller.send_error(CALL, request_id, ErrorURI.NO_SUCH_PROCEDURE, [f"no meta procedure {procedure!r}"])
            return
        args = message[4] if len(message) > 4 else []
        kwargs = message[5] if len(message) > 5 else {}
        try:
            result = handler(caller, args, kwargs)
        except MetaError as error:
            caller.send_error(CALL, request_id, error.uri, [str(error)])
            return
        except (IndexError, TypeError, ValueError, KeyError) as error:
            caller.send_error(CALL, request_id, ErrorURI.INVALID_ARGUMENT, [f"{procedure}: bad arguments ({error})"])
            return
        if isinstance(result, Deferred):  # the answer of the whole cluster
            result.addCallbacks(
                self._answer, self._answer_error, callbackArgs=(caller, request_id), errbackArgs=(caller, request_id)
            )
            return
        caller.send([RESULT, request_id, {}, [result]])

    @staticmethod
    def _answer(result: Any, caller: RoutedSession, request_id: int) -> None:
        caller.send([RESULT, request_id, {}, [result]])

    @staticmethod
    def _answer_error(failure: Any, caller: RoutedSession, request_id: int) -> None:
        if failure.check(MetaError):
            caller.send_error(CALL, request_id, failure.value.uri, [str(failure.value)])
        else:
            caller.send_error(CALL, request_id, ErrorURI.CANCELED, [failure.getErrorMessage()])

    # -- sessions -----------------------------------------------------------------------

    def _sessions(self, kwargs: dict[str, Any], args: list[Any]) -> list[RoutedSession]:
        roles = args[0] if args else kwargs.get("filter_authroles")
        sessions = list(self.realm.sessions.values())
        if roles is not None:
            if type(roles) is not list:
                raise MetaError(ErrorURI.INVALID_ARGUMENT, "filter_authroles must be a list of roles")
            sessions = [s for s in sessions if s.authrole in roles]
        return sessions

    def _session_count(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> int | Deferred[int]:
        if self.link is not None:
            return self._cluster_sessions(kwargs, args).addCallback(len)
        return len(self._sessions(kwargs, args))

    def _session_list(
        self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]
    ) -> list[int] | Deferred[list[int]]:
        if self.link is not None:
            return self._cluster_sessions(kwargs, args).addCallback(lambda found: [d["session"] for d in found])
        return [s.session_id for s in self._sessions(kwargs, args)]  # type: ignore[misc]

    def _cluster_sessions(self, kwargs: dict[str, Any], args: list[Any]) -> Deferred[list[dict[str, Any]]]:
        roles = args[0] if args else kwargs.get("filter_authroles")
        if roles is not None and type(roles) is not list:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, "filter_authroles must be a list of roles")
        assert self.link is not None
        found = self.link.sessions(self.realm.name)
        if roles is not None:
            found.addCallback(lambda every: [d for d in every if d.get("authrole") in roles])
        return found

    def _target(self, args: list[Any]) -> RoutedSession:
        session = self.realm.sessions.get(args[0]) if args and type(args[0]) is int else None
        if session is None:
            raise MetaError(ErrorURI.NO_SUCH_SESSION, f"no session {args[0] if args else None!r} in this realm")
        return session

    def _session_get(
        self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]
    ) -> dict[str, Any] | Deferred[dict[str, Any]]:
        if self.link is not None and args and type(args[0]) is int and args[0] not in self.realm.sessions:
            wanted = args[0]

            def pick(every: list[dict[str, Any]]) -> dict[str, Any]:
                for details in every:
                    if details.get("session") == wanted:
                        return details
                raise MetaError(ErrorURI.NO_SUCH_SESSION, f"no session {wanted!r} in this realm")

            return self.link.sessions(self.realm.name).addCallback(pick)
        return self._target(args).details()

    def _kill(self, sessions: list[RoutedSession], kwargs: dict[str, Any], silently: bool = False) -> list[int]:
        reason = kwargs.get("reason") or ErrorURI.CLOSE_KILLED
        if not is_valid_uri(reason):
            raise MetaError(ErrorURI.INVALID_URI, f"invalid reason URI {reason!r}")
        message = kwargs.get("message") or ""
        if silently:
            self._silenced.update(sessions)
        killed = []
        for session in sessions:
            killed.append(session.session_id)
            session.goodbye(reason, str(message))
        return killed  # type: ignore[return-value]

    def kill_here(self, session_ids: list[int], reason: str, message: str, silently: bool) -> None:
        """Close these sessions of this router (another node of the cluster asked)."""
        found = [self.realm.sessions[i] for i in session_ids if i in self.realm.sessions]
        self._kill(found, {"reason": reason, "message": message}, silently)

    def _kill_elsewhere(
        self, caller: RoutedSession, wanted: Callable[[dict[str, Any]], bool], kwargs: dict[str, Any], silently: bool
    ) -> Deferred[list[int]]:
        """Close the sessions of other nodes whose details are ``wanted``; their ids."""
        assert self.link is not None
        link, realm = self.link, self.realm
        reason, message = kwargs.get("reason") or ErrorURI.CLOSE_KILLED, str(kwargs.get("message") or "")

        def kill(every: list[dict[str, Any]]) -> list[int]:
            ids = [
                d["session"]
                for d in every
                if d.get("session") not in realm.sessions and d.get("session") != caller.session_id and wanted(d)
            ]
            if ids:
                link.kill(realm.name, ids, reason, message, silently)
            return ids

        return link.sessions(realm.name).addCallback(kill)

    def _kill_everywhere(
        self,
        caller: RoutedSession,
        here: list[RoutedSession],
        wanted: Callable[[dict[str, Any]], bool],
        kwargs: dict[str, Any],
        silently: bool = False,
    ) -> list[int] | Deferred[list[int]]:
        killed = self._kill(here, kwargs, silently)
        if self.link is None:
            return killed
        return self._kill_elsewhere(caller, wanted, kwargs, silently).addCallback(lambda more: killed + more)

    def _session_kill(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> None | Deferred[None]:
        if self.link is not None and args and type(args[0]) is int and args[0] not in self.realm.sessions:
            wanted = args[0]
            self._kill([], kwargs)  # checks the reason

            def one(killed: list[int]) -> None:
                if not killed:
                    raise MetaError(ErrorURI.NO_SUCH_SESSION, f"no session {wanted!r} in this realm")

            return self._kill_elsewhere(caller, lambda d: d.get("session") == wanted, kwargs, False).addCallback(one)
        target = self._target(args)
        if target is caller:
            raise MetaError(ErrorURI.NO_SUCH_SESSION, "a session cannot kill itself; use GOODBYE")
        self._kill([target], kwargs)
        return None

    def _session_kill_by_authid(
        self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]
    ) -> list[int] | Deferred[list[int]]:
        authid = args[0]
        here = [s for s in self.realm.sessions.values() if s.authid == authid and s is not caller]
        return self._kill_everywhere(caller, here, lambda d: d.get("authid") == authid, kwargs)

    def _session_kill_by_authrole(
        self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]
    ) -> int | Deferred[int]:
        authrole = args[0]
        here = [s for s in self.realm.sessions.values() if s.authrole == authrole and s is not caller]
        killed = self._kill_everywhere(caller, here, lambda d: d.get("authrole") == authrole, kwargs)
        return killed.addCallback(len) if isinstance(killed, Deferred) else len(killed)

    def _session_kill_all(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> int | Deferred[int]:
        # The specification: no session meta events or testaments for these sessions (no
        # subscriber but the caller would be left to receive them).
        here = [s for s in self.realm.sessions.values() if s is not caller]
        killed = self._kill_everywhere(caller, here, lambda d: True, kwargs, silently=True)
        return killed.addCallback(len) if isinstance(killed, Deferred) else len(killed)

    # -- message trace ------------------------------------------------------------------

    def _session_trace(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``promisifier.session.trace(session_id, on, payloads=False)``."""
        target = self._target(args)
        on = args[1] if len(args) > 1 else kwargs.get("on", True)
        payloads = args[2] if len(args) > 2 else kwargs.get("payloads", False)
        if type(on) is not bool or type(payloads) is not bool:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, "trace(session_id: int, on: bool, payloads: bool = False)")
        self.set_trace(target, on, payloads)
        return {"session": target.session_id, "trace": on, "payloads": payloads and on}

    def set_trace(self, session: RoutedSession, on: bool, payloads: bool = False) -> None:
        """Start (or change) or stop the message trace of ``session``."""
        if self.link is not None:
            self.link.session_left(self.realm.name, session.session_id)  # type: ignore[arg-type]
        trace = self.traces.pop(session, None)
        if trace is not None:
            trace.stop()
        if on:
            self.traces[session] = SessionTrace(session, payloads)
        log.info(
            "message trace of session {session_id} {state}",
            state=("on, with payloads" if payloads else "on, payload sizes only") if on else "off",
            event="trace_switched",
            **session.log_fields(),
        )

    # -- testaments ---------------------------------------------------------------------

    def _add_testament(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> None:
        topic = args[0]
        event_args = args[1] if len(args) > 1 else []
        event_kwargs = args[2] if len(args) > 2 else {}
        scope = kwargs.get("scope", "destroyed")
        if not is_valid_uri(topic, self.realm.strict_uris):
            raise MetaError(ErrorURI.INVALID_URI, f"invalid testament topic {topic!r}")
        if scope not in TESTAMENT_SCOPES or type(event_args) is not list or type(event_kwargs) is not dict:
            raise MetaError(
                ErrorURI.INVALID_ARGUMENT, "add_testament(topic, args: list, kwargs: dict, scope=destroyed|detached)"
            )
        by_scope = self._testaments.setdefault(caller, {})
        by_scope.setdefault(scope, []).append((topic, event_args, event_kwargs))
        if self.link is not None:
            self.link.testaments(self.realm.name, caller.session_id, by_scope)  # type: ignore[arg-type]

    def testaments_of(self, session: RoutedSession) -> dict[str, list[Testament]]:
        """The testaments ``session`` left, by scope."""
        return self._testaments.get(session, {})

    def _flush_testaments(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> int:
        scope = kwargs.get("scope", "destroyed")
        if scope not in TESTAMENT_SCOPES:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, "scope must be destroyed or detached")
        by_scope = self._testaments.get(caller, {})
        flushed = len(by_scope.pop(scope, []))
        if flushed and self.link is not None:
            self.link.testaments(self.realm.name, caller.session_id, by_scope)  # type: ignore[arg-type]
        return flushed

    # -- registrations and subscriptions ---------------------------------------------------

    def _registration(self, args: list[Any]) -> RouterRegistration:
        registration = self.realm.dealer.registration(args[0]) if args else None
        if registration is None:
            raise MetaError(ErrorURI.NO_SUCH_REGISTRATION, f"no registration {args[0] if args else None!r}")
        return registration

    def _subscription(self, args: list[Any]) -> RouterSubscription:
        subscription = self.realm.broker.subscription(args[0]) if args else None
        if subscription is None:
            raise MetaError(ErrorURI.NO_SUCH_SUBSCRIPTION, f"no subscription {args[0] if args else None!r}")
        return subscription

    @staticmethod
    def _match_option(args: list[Any], kwargs: dict[str, Any]) -> str:
        options = args[1] if len(args) > 1 and type(args[1]) is dict else kwargs
        match = options.get("match", "exact")
        if type(match) is not str or match not in MATCH_POLICIES:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, f"match must be one of {MATCH_POLICIES}")
        return match

    @staticmethod
    def _uri_arg(args: list[Any]) -> str:
        # The URI indexes split what they are given: anything but a string is refused here.
        uri = args[0]
        if type(uri) is not str:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, "the first argument must be a URI string")
        return uri

    @staticmethod
    def _revocation_reason(args: list[Any], kwargs: dict[str, Any]) -> str | None:
        reason = args[2] if len(args) > 2 else kwargs.get("reason")
        if reason is not None and type(reason) is not str:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, "reason must be a string")
        return reason

    def _registration_remove_callee(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> None:
        """``wamp.registration.remove_callee(registration_id, callee_id, reason=None)``."""
        registration = self._registration(args)
        callee = self.realm.sessions.get(args[1]) if len(args) > 1 and type(args[1]) is int else None
        reason = self._revocation_reason(args, kwargs)
        if callee is None or not self.realm.dealer.remove_callee(registration, callee, reason):
            raise MetaError(
                ErrorURI.NO_SUCH_SESSION,
                f"no callee {args[1] if len(args) > 1 else None!r} on registration {registration.id}",
            )

    def _subscription_remove_subscriber(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> None:
        """``wamp.subscription.remove_subscriber(subscription_id, subscriber_id, reason=None)``."""
        subscription = self._subscription(args)
        subscriber = self.realm.sessions.get(args[1]) if len(args) > 1 and type(args[1]) is int else None
        reason = self._revocation_reason(args, kwargs)
        if subscriber is None or not self.realm.broker.remove_subscriber(subscription, subscriber, reason):
            raise MetaError(
                ErrorURI.NO_SUCH_SESSION,
                f"no subscriber {args[1] if len(args) > 1 else None!r} on subscription {subscription.id}",
            )

    def _subscription_get_events(
        self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """``wamp.subscription.get_events(subscription_id, **filters)`` (event history)."""
        subscription = self._subscription(args)
        try:
            return self.realm.broker.get_events(caller, subscription, kwargs)
        except HistoryError as error:
            raise MetaError(ErrorURI.INVALID_ARGUMENT, str(error)) from None
        except PermissionError as error:
            raise MetaError(ErrorURI.NOT_AUTHORIZED, str(error)) from None

    def _registration_lookup(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> int | None:
        registration = self.realm.dealer.lookup(self._uri_arg(args), self._match_option(args, kwargs))
        return registration.id if registration is not None else None

    def _registration_match(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> int | None:
        registration = self.realm.dealer.match(self._uri_arg(args))
        return registration.id if registration is not None else None

    def _subscription_lookup(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> int | None:
        subscription = self.realm.broker.lookup(self._uri_arg(args), self._match_option(args, kwargs))
        return subscription.id if subscription is not None else None

    def _subscription_match(self, caller: RoutedSession, args: list[Any], kwargs: dict[str, Any]) -> list[int] | None:
        found = [s.id for s in self.realm.broker.match(self._uri_arg(args))]
        return found or None

    # -- events -------------------------------------------------------------------------

    def _event(self, topic: str, *args: Any) -> None:
        self.realm.broker.publish(topic, list(args))

    def session_joined(self, session: RoutedSession) -> None:
        """Publish ``wamp.session.on_join``."""
        details = session.details()
        if self.link is not None:
            self.link.session_joined(self.realm.name, session.session_id, details)  # type: ignore[arg-type]
        self._event("wamp.session.on_join", details)

    def session_left(self, session: RoutedSession) -> None:
        """Publish the session's testaments, then ``wamp.session.on_leave`` (neither for a
        session that ``wamp.session.kill_all`` closed)."""
        if self.link is not None:
            self.link.session_left(self.realm.name, session.session_id)  # type: ignore[arg-type]
        trace = self.traces.pop(session, None)
        if trace is not None:
            trace.stop()
        testaments = self._testaments.pop(session, {})
        if session in self._silenced:  # closed by kill_all
            self._silenced.discard(session)
            return
        for scope in TESTAMENT_SCOPES:
            for topic, args, kwargs in testaments.get(scope, ()):
                self.realm.broker.publish(topic, args, kwargs)
        self._event("wamp.session.on_leave", session.session_id, session.authid, session.authrole)

    def registration_created(self, session: RoutedSession, registration: RouterRegistration) -> None:
        self._item_event("wamp.registration.on_create", session, registration, registration.details())

    def registered(self, session: RoutedSession, registration: RouterRegistration) -> None:
        self._item_event("wamp.registration.on_register", session, registration, registration.id)

    def unregistered(self, session: RoutedSession, registration: RouterRegistration) -> None:
        self._item_event("wamp.registration.on_unregister", session, registration, registration.id)

    def registration_deleted(self, session: RoutedSession, registration: RouterRegistration) -> None:
        self._item_event("wamp.registration.on_delete", session, registration, registration.id)

    def subscription_created(self, session: RoutedSession, subscription: RouterSubscription) -> None:
        self._item_event("wamp.subscription.on_create", session, subscription, subscription.details())

    def subscribed(self, session: RoutedSession, subscription: RouterSubscription) -> None:
        self._item_event("wamp.subscription.on_subscribe", session, subscription, subscription.id)

    def unsubscribed(self, session: RoutedSession, subscription: RouterSubscription) -> None:
        self._item_event("wamp.subscription.on_unsubscribe", session, subscription, subscription.id)

    def subscription_deleted(self, session: RoutedSession, subscription: RouterSubscription) -> None:
        self._item_event("wamp.subscription.on_delete", session, subscription, subscription.id)

    def _item_event(
        self, topic: str, session: RoutedSession, item: RouterRegistration | RouterSubscription, argument: Any
    ) -> None:
        if self.link is not None:  # published once for the whole cluster
            self.link.item_event(self.realm.name, topic, session.session_id, item)  # type: ignore[arg-type]
        else:
            self._event(topic, session.session_id, argument)
