"""One client's WAMP session as the router sees it: the session state machine.

States (:class:`RouterSessionState`) follow the specification's chart, with authentication's two:
ESTABLISHING (waiting for HELLO), CHALLENGING (CHALLENGE sent, waiting for AUTHENTICATE),
AUTHENTICATING (the answer is being checked), ESTABLISHED, SHUTTING_DOWN (the router sent
GOODBYE and waits for the reply) and CLOSED. Messages of an established session are
dispatched by type to the realm's dealer and broker; GOODBYE, ABORT and a client's ERROR
the session handles itself (docs/design.md has the chart). To routing, a session is a
:class:`~promisifier.router.routed.RoutedSession`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol

from twisted.logger import Logger

from promisifier.router.auth import Accepted, Authenticator, Challenge
from promisifier.router.auth_failure import AuthenticationFailed
from promisifier.transport.closing import CloseCode
from promisifier.wire import LIMIT_EXCEEDED, EncodeError, ErrorURI, ProtocolError
from promisifier.wire.ids import MAX_ID
from promisifier.wire.messages import (
    ABORT,
    AUTHENTICATE,
    CHALLENGE,
    ERROR,
    GOODBYE,
    HELLO,
    INVOCATION,
    WELCOME,
    Message,
    error_message,
    message_name,
)

if TYPE_CHECKING:
    from promisifier.router.clock import Clock, DelayedCall
    from promisifier.router.peer import Peer
    from promisifier.router.realm import Realm
    from promisifier.router.router_config import RouterConfig

log = Logger(namespace="promisifier.router")

#: seconds the router waits, after the client answered its GOODBYE, for the client to
#: close the connection before closing it itself
GOODBYE_CLOSE_GRACE = 2.0

_CLIENT_ROLES = frozenset(("caller", "callee", "publisher", "subscriber"))


class RouterSessionState(enum.Enum):
    """Where a session is in its lifetime."""

    ESTABLISHING = "establishing"
    CHALLENGING = "challenging"
    AUTHENTICATING = "authenticating"
    ESTABLISHED = "established"
    SHUTTING_DOWN = "shutting_down"
    CLOSED = "closed"


#: the former name (the client's session has a SessionState of its own)
SessionState = RouterSessionState


class SessionHost(Protocol):
    """What a session needs of its router (:class:`promisifier.router.RouterCore`)."""

    clock: Clock
    config: RouterConfig
    realms: dict[str, Realm]
    authenticator: Authenticator
    auth_failures: int
    protocol_errors: int

    @property
    def session_count(self) -> int: ...

    def new_session_id(self) -> int: ...

    def release_session_id(self, session_id: int | None) -> None: ...

    def session_ended(self, session: RouterSession) -> None: ...


class RouterSession:
    """The router's half of one client session, bound to one :class:`Peer`.

    Implements :class:`~promisifier.router.routed.RoutedSession` for the dealer, the
    broker and the meta API.
    """

    #: False: a session of this router (True: one standing for sessions on another node)
    remote = False

    def __init__(self, router: SessionHost, peer: Peer, authenticator: Authenticator | None = None) -> None:
        self.router = router
        #: the connection this session's messages go through (its ``peer`` is the address)
        self.connection = peer
        #: the authentication methods of the listener this session came through
        self.authenticator = authenticator if authenticator is not None else router.authenticator
        self._challenge: tuple[Realm, Challenge] | None = None
        self._goodbye_timer: DelayedCall | None = None
        self.state = RouterSessionState.ESTABLISHING
        self.session_id: int | None = None
        self.realm: Realm | None = None
        self.authid: str | None = None
        self.authrole: str | None = None
        self.authmethod: str | None = None
        self.authprovider: str | None = None
        #: facts about the authentication (e.g. the cryptosign pubkey), as WELCOME and the
        #: meta API show them
        self.authextra: dict[str, Any] = {}
        #: the client's HELLO.Details.roles (role name -> {"features": {...}})
        self.roles: dict[str, Any] = {}
        #: request id of the last INVOCATION sent to this session as a callee
        self._last_invocation_id = 0
        #: why the last :meth:`send` that returned False could not encode its message
        self.last_send_error = ""
        self.joined_at: float | None = None
        self._dispatch: dict[int, Any] = {}
        self._hello_timer: DelayedCall | None = router.clock.callLater(
            router.config.hello_timeout, self._on_hello_timeout
        )

    def __repr__(self) -> str:
        return f"<RouterSession {self.session_id} {self.state.value} realm={self.realm and self.realm.name}>"

    def log_fields(self) -> dict[str, Any]:
        """The fields every log event about this session carries."""
        realm = self.realm
        return {
            "session_id": self.session_id,
            "realm": realm.name if realm is not None else None,
            "authid": self.authid,
            "peer": self.connection.peer,
        }

    # -- facts ----------------------------------------------------------------------

    @property
    def peer(self) -> Peer:
        """The former name of :attr:`connection` (``peer`` means an address elsewhere)."""
        return self.connection

    def next_invocation_id(self) -> int:
        """The request id of the next INVOCATION sent to this session as a callee
        (1, 2, 3, ... wrapping back to 1 after 2**53, the session scope of WAMP ids)."""
        last = self._last_invocation_id + 1
        if last > MAX_ID:
            last = 1
        self._last_invocation_id = last
        return last

    def details(self) -> dict[str, Any]:
        """The session as the meta API describes it."""
        peer = self.connection
        return {
            "session": self.session_id,
            "authid": self.authid,
            "authrole": self.authrole,
            "authmethod": self.authmethod,
            "authprovider": self.authprovider,
            "authextra": self.authextra,
            "transport": {
                "type": getattr(peer, "transport_type", "websocket"),
                "peer": peer.peer,
                "serializer": peer.serializer_name,
            },
        }

    def has_feature(self, role: str, feature: str) -> bool:
        """True when the client announced ``feature`` for ``role`` in its HELLO."""
        role_details = self.roles.get(role)
        if type(role_details) is not dict:
            return False
        features = role_details.get("features")
        return type(features) is dict and features.get(feature) is True

    # -- from the transport -----------------------------------------------------------

    def on_message(self, message: Message) -> None:
        """Handle one received message that passed the wire check."""
        if self.state is RouterSessionState.ESTABLISHED:
            handler = self._dispatch.get(message[0])
            if handler is not None:
                handler(self, message)
            elif message[0] == GOODBYE:
                self._on_goodbye(message)
            elif message[0] == ABORT:
                self._on_abort(message)
            elif message[0] == ERROR:
                self._on_error(message)
            else:
                self.protocol_violation(
                    f"{message_name(message[0])} is not allowed from a client in an established session"
                )
        elif self.state is RouterSessionState.ESTABLISHING:
            if message[0] == HELLO:
                self._on_hello(message)
            elif message[0] == ABORT:
                self._close_transport(CloseCode.NORMAL, "client aborted")
            else:
                self.protocol_violation(f"{message_name(message[0])} before HELLO")
        elif self.state is RouterSessionState.CHALLENGING:
            if message[0] == AUTHENTICATE:
                self.on_authenticate(message)
            elif message[0] == ABORT:
                self._close_transport(CloseCode.NORMAL, "client aborted")
            else:
                self.protocol_violation(f"{message_name(message[0])} while waiting for AUTHENTICATE")
        elif self.state is RouterSessionState.AUTHENTICATING:
            self.protocol_violation(f"{message_name(message[0])} before WELCOME")
        elif self.state is RouterSessionState.SHUTTING_DOWN:
            # We sent GOODBYE: everything but the GOODBYE reply is ignored. The client
            # closes the connection after its reply; closing from both ends at once can
            # lose a close frame, so the router only closes if the client does not.
            if message[0] == GOODBYE and self._goodbye_timer is None:
                self._goodbye_timer = self.router.clock.callLater(
                    GOODBYE_CLOSE_GRACE, self._close_transport, CloseCode.NORMAL, "goodbye"
                )

    def on_protocol_error(self, error: ProtocolError) -> None:
        """A received message decoded but broke the protocol."""
        if self.state is not RouterSessionState.CLOSED:
            self.protocol_violation(str(error))

    def on_close(self, code: int, reason: str) -> None:
        """The transport is gone: leave the realm and release everything held."""
        self._cancel_hello_timer()
        timer, self._goodbye_timer = self._goodbye_timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self._leave_realm(f"connection closed ({code})")
        self.state = RouterSessionState.CLOSED
        self.router.session_ended(self)

    # -- sending --------------------------------------------------------------------

    def send(self, message: Message) -> bool:
        """Send ``message`` to the client; False when it cannot be encoded for it."""
        try:
            self.connection.send(message)
        except EncodeError as error:
            self.last_send_error = str(error)
            log.info(
                "session {session_id}: cannot send {kind}: {error}",
                session_id=self.session_id,
                kind=message_name(message[0]),
                error=error,
            )
            return False
        return True

    def send_error(
        self,
        request_type: int,
        request_id: int,
        error_uri: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Send ERROR for the client's request ``request_id`` of type ``request_type``."""
        self.send(error_message(request_type, request_id, error_uri, args, kwargs, details))

    def goodbye(self, reason: str = ErrorURI.CLOSE_SYSTEM_SHUTDOWN, message: str = "") -> None:
        """Close an established session from the router's side with GOODBYE."""
        if self.state is not RouterSessionState.ESTABLISHED:
            self._close_transport(CloseCode.GOING_AWAY, message or reason)
            return
        details = {"message": message} if message else {}
        self.send([GOODBYE, details, reason])
        self._leave_realm(reason)
        self.state = RouterSessionState.SHUTTING_DOWN

    def abort(self, reason: str, message: str, close_code: int = CloseCode.NORMAL, *, quiet: bool = False) -> None:
        """Send ABORT with ``reason`` (a URI) and close the transport. Logged (event
        ``abort``) unless ``quiet``: the caller logged why already."""
        if not quiet:
            log.info(
                "session {session_id} aborted by the router: {reason}: {message}",
                reason=reason,
                message=message,
                by="router",
                event="abort",
                **self.log_fields(),
            )
        self.send([ABORT, {"message": message}, reason])
        self._leave_realm(reason)
        self._close_transport(close_code, message)

    # -- session lifecycle ------------------------------------------------------------

    def _on_hello(self, message: Message) -> None:
        realm_name, details = message[1], message[2]
        roles = details.get("roles")
        if type(roles) is not dict or not any(role in _CLIENT_ROLES for role in roles):
            self.protocol_violation(
                "HELLO: Details.roles must announce at least one of caller, callee, publisher, subscriber"
            )
            return
        realm = self.router.realms.get(realm_name)
        if realm is None:
            log.info(
                "connection {connection_id} from {peer}: HELLO for unknown realm {realm!r}",
                connection_id=self.connection.connection_id,
                peer=self.connection.peer,
                realm=realm_name,
                authid=details.get("authid"),
                session_id=None,
                reason=ErrorURI.NO_SUCH_REALM,
                by="router",
                event="abort",
            )
            self.abort(ErrorURI.NO_SUCH_REALM, f"no realm {realm_name!r} on this router", quiet=True)
            return
        limits = self.router.config.limits
        if self.router.session_count >= limits.max_sessions:
            reached = f"max_sessions ({limits.max_sessions}) reached: the router has reached its session limit"
        elif len(realm.sessions) >= limits.max_sessions_per_realm:
            reached = f"max_sessions_per_realm ({limits.max_sessions_per_realm}) reached in realm {realm.name!r}"
        else:
            reached = ""
        if reached:
            log.info(
                "connection {connection_id} from {peer}: {limit}, HELLO refused",
                limit=reached,
                connection_id=self.connection.connection_id,
                peer=self.connection.peer,
                realm=realm_name,
                authid=details.get("authid"),
                session_id=None,
                reason=LIMIT_EXCEEDED,
                by="router",
                event="abort",
            )
            self.abort(LIMIT_EXCEEDED, reached, quiet=True)
            return
        method = self.authenticator.pick_method(details)
        if method is None:
            self._auth_failure(
                realm_name, details.get("authid"), ErrorURI.NO_AUTH_METHOD, "no acceptable authentication method"
            )
            return
        self.roles = roles
        self.session_id = self.router.new_session_id()
        requested_authid = details.get("authid")
        authid = requested_authid if type(requested_authid) is str and requested_authid else None
        if method == "anonymous":
            self._accept(realm, self.authenticator.anonymous(authid, self.session_id))
            return
        if method == "tls":
            try:
                accepted = self.authenticator.tls(self.connection)
            except AuthenticationFailed as error:
                self._auth_failure(
                    realm.name, authid, ErrorURI.AUTHENTICATION_FAILED, "authentication failed", f"tls: {error}"
                )
                return
            if authid is not None and authid != accepted.authid:
                why = f"tls: the certificate is {accepted.authid!r}'s, not the authid asked for"
                self._auth_failure(realm.name, authid, ErrorURI.AUTHENTICATION_FAILED, "authentication failed", why)
                return
            self._accept(realm, accepted)
            return
        challenge = self.authenticator.challenge(method, realm.name, authid, self.session_id, details, self.connection)
        self.state = RouterSessionState.CHALLENGING
        self.send([CHALLENGE, method, challenge.extra])
        self._challenge = (realm, challenge)

    def on_authenticate(self, message: Message) -> None:
        """AUTHENTICATE while CHALLENGING: check the signature, then WELCOME or ABORT."""
        pending, self._challenge = self._challenge, None
        if pending is None:
            self.protocol_violation("AUTHENTICATE without a CHALLENGE")
            return
        realm, challenge = pending
        # Nothing else may arrive until the answer: a dynamic check may take a while.
        self.state = RouterSessionState.AUTHENTICATING

        def accepted(result: Accepted) -> None:
            if self.state is RouterSessionState.AUTHENTICATING:
                self._accept(realm, result)

        def refused(failure: Any) -> None:
            if failure.check(AuthenticationFailed):
                why = f"{challenge.method}: {failure.value}" if str(failure.value) else challenge.method
            else:
                log.failure("authenticator failed for authid {authid!r}", failure, authid=challenge.authid)
                why = f"{challenge.method}: the authenticator raised {failure.type.__name__}"
            if self.state is RouterSessionState.AUTHENTICATING:
                self._auth_failure(
                    realm.name, challenge.authid, ErrorURI.AUTHENTICATION_FAILED, "authentication failed", why
                )

        challenge.verify(message[1], message[2]).addCallbacks(accepted, refused)

    def _auth_failure(self, realm: str, authid: object, reason: str, text: str, why: str | None = None) -> None:
        """ABORT with ``reason`` and ``text``; the log says ``why`` (the client never learns it)."""
        log.info(
            "authentication failure on connection {connection_id} from {peer}: realm {realm!r}, authid {authid!r}: {text}",
            connection_id=self.connection.connection_id,
            peer=self.connection.peer,
            realm=realm,
            authid=authid,
            session_id=self.session_id,
            text=why or text,
            reason=reason,
            event="auth_failure",
        )
        self.router.auth_failures += 1
        self.abort(reason, text, quiet=True)

    def _accept(self, realm: Realm, accepted: Accepted) -> None:
        if not realm.authorizer.has_role(accepted.authrole):
            self._auth_failure(
                realm.name, accepted.authid, ErrorURI.NO_SUCH_ROLE, f"role {accepted.authrole!r} does not exist"
            )
            return
        self.authid = accepted.authid
        self.authrole = accepted.authrole
        self.authmethod = accepted.authmethod
        self.authprovider = accepted.authprovider
        self.authextra = dict(accepted.authextra)
        self._join(realm, accepted.welcome_extra)

    def _join(self, realm: Realm, welcome_extra: dict[str, Any] | None = None) -> None:
        self._cancel_hello_timer()
        self.realm = realm
        self._dispatch = realm.dispatch
        self.state = RouterSessionState.ESTABLISHED
        self.joined_at = self.router.clock.seconds()
        realm.attach(self)
        details: dict[str, Any] = {
            "realm": realm.name,
            "authid": self.authid,
            "authrole": self.authrole,
            "authmethod": self.authmethod,
            "authprovider": self.authprovider,
            "roles": realm.router_roles(),
            "agent": self.router.config.agent,
        }
        if self.authextra or welcome_extra:
            details["authextra"] = {**self.authextra, **(welcome_extra or {})}
        sent = self.send([WELCOME, self.session_id, details])
        if sent:
            realm.announce_join(self)
        log.info(
            "session {session_id} joined realm {realm} from {peer} ({serializer})",
            session_id=self.session_id,
            realm=realm.name,
            peer=self.connection.peer,
            serializer=self.connection.serializer_name,
            authid=self.authid,
            authrole=self.authrole,
            authmethod=self.authmethod,
            event="join",
        )

    def _on_error(self, message: Message) -> None:
        if message[1] == INVOCATION and self.realm is not None:
            self.realm.dealer.on_invocation_error(self, message)
        else:
            self.protocol_violation(f"ERROR: a client may only send ERROR for an INVOCATION, not for type {message[1]}")

    def _on_goodbye(self, message: Message) -> None:
        """The client closes its session: answer GOODBYE and go back to ESTABLISHING."""
        self.send([GOODBYE, {}, ErrorURI.CLOSE_GOODBYE_AND_OUT])
        self._leave_realm(f"goodbye ({message[2]})")
        # The transport may carry a new session; it must start within the HELLO deadline.
        self.state = RouterSessionState.ESTABLISHING
        self._hello_timer = self.router.clock.callLater(self.router.config.hello_timeout, self._on_hello_timeout)

    def _on_abort(self, message: Message) -> None:
        """The client aborted its established session: end it and the connection."""
        log.info(
            "session {session_id} aborted by the client: {reason}",
            reason=message[2],
            by="client",
            event="abort",
            **self.log_fields(),
        )
        self._leave_realm(f"aborted by client ({message[2]})")
        self._close_transport(CloseCode.NORMAL, "session aborted")

    def _leave_realm(self, why: str) -> None:
        realm = self.realm
        if realm is None:
            return
        self.realm = None
        self._dispatch = {}
        realm.detach(self)
        self.router.release_session_id(self.session_id)
        log.info(
            "session {session_id} left realm {realm}: {why}",
            session_id=self.session_id,
            realm=realm.name,
            why=why,
            authid=self.authid,
            peer=self.connection.peer,
            event="leave",
        )

    def protocol_violation(self, text: str) -> None:
        """ABORT the session with wamp.error.protocol_violation and close (1002)."""
        log.info(
            "protocol violation by session {session_id} (connection {connection_id} from {peer}): {text}",
            connection_id=self.connection.connection_id,
            text=text,
            event="protocol_error",
            **self.log_fields(),
        )
        self.router.protocol_errors += 1
        self.abort(ErrorURI.PROTOCOL_VIOLATION, text, CloseCode.PROTOCOL_ERROR, quiet=True)

    def _on_hello_timeout(self) -> None:
        self._hello_timer = None
        log.info(
            "connection {connection_id} from {peer}: no HELLO within {timeout} s, closing",
            connection_id=self.connection.connection_id,
            peer=self.connection.peer,
            timeout=self.router.config.hello_timeout,
        )
        self._close_transport(CloseCode.POLICY_VIOLATION, "no HELLO received in time")

    def _cancel_hello_timer(self) -> None:
        timer = self._hello_timer
        self._hello_timer = None
        if timer is not None and timer.active():
            timer.cancel()

    def _close_transport(self, code: int, reason: str) -> None:
        self._cancel_hello_timer()
        if self.state is not RouterSessionState.CLOSED:
            self.state = RouterSessionState.CLOSED
            self.connection.close(code, reason)
