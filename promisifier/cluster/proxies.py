"""Sessions of other nodes, as this node's dealer sees them.

* :class:`RemoteCallee` (on the caller's node): every callee of one other node in one
  realm. The dealer invokes it like a callee; it forwards the call to that node, and the
  node's answers come back to the dealer as the callee's YIELD or ERROR.
* :class:`RemoteCaller` (on the callee's node): one session of another node that called
  here. The dealer answers it like a caller; it sends the answers back to that node.

Both have ``remote = True``: the dealer never forwards a call from a remote caller to a
remote callee (no loops), and keeps meta events for its own sessions. Besides, they are
what routing asks of any session, a :class:`~promisifier.router.routed.RoutedSession`
(mypy checks it, at the end of this module). Neither is ever in ``Realm.sessions`` (the
sessions of this router); ``Realm.holds`` is True for one while the dealer has it attached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promisifier.router.dealer import Invocation
from promisifier.router.passthru import PASSTHRU_ATTRIBUTES
from promisifier.wire import ErrorURI
from promisifier.wire.ids import IdSequence
from promisifier.wire.messages import ERROR, INTERRUPT, INVOCATION, RESULT, error_message

if TYPE_CHECKING:
    from promisifier.cluster.node import ClusterNode
    from promisifier.router.realm import Realm
    from promisifier.router.routed import RoutedSession

#: features every remote session has (the node at the other end decides for its own)
_FEATURES = {
    "call_canceling",
    "progressive_call_results",
    "progressive_call_invocations",
    "caller_identification",
    "payload_passthru_mode",
}


class _RemotePeer:
    """The connection of a remote session: the link to its node. Messages go through the
    session's own ``send``; none is sent to, or closed on, the link itself."""

    connection_id = 0
    serializer_name: str | None = None
    congested = False

    def __init__(self, node: str) -> None:
        self.peer = f"cluster:{node}"

    def send(self, message: list[Any]) -> None:
        """Nothing goes to another node through here (the session's ``send`` forwards)."""

    def send_shared(self, message: list[Any], encoded: dict[str, bytes]) -> bool:
        """Events reach another node's subscribers through the broker's link, not here."""
        return False

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Sessions of other nodes are closed by their own node."""


class _RemoteSession:
    session_id: int
    authid: str | None
    authrole: str | None
    remote = True
    authmethod = "cluster"
    #: the messages forwarded are encoded by the node link, not here
    last_send_error = ""

    def __init__(self, cluster: ClusterNode, realm: Realm, node: str) -> None:
        self.cluster = cluster
        self.realm: Realm | None = realm
        self.node = node
        self.connection = _RemotePeer(node)
        self.invocation_ids = IdSequence()

    def has_feature(self, role: str, feature: str) -> bool:
        return feature in _FEATURES

    def next_invocation_id(self) -> int:
        return self.invocation_ids.next()

    def details(self) -> dict[str, Any]:
        return {"session": self.session_id, "authid": self.authid, "authrole": self.authrole, "node": self.node}

    def goodbye(self, reason: str, message: str = "") -> None:
        """Sessions of other nodes are closed by their own node."""

    def protocol_violation(self, text: str) -> None:
        """What another node forwards was checked there (its session broke nothing here)."""

    def log_fields(self) -> dict[str, Any]:
        realm = self.realm
        return {
            "session_id": self.session_id,
            "realm": realm.name if realm is not None else None,
            "authid": self.authid,
            "peer": self.connection.peer,
        }

    def send_error(
        self,
        request_type: int,
        request_id: int,
        error_uri: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.send(error_message(request_type, request_id, error_uri, args, kwargs, details))

    def send(self, message: list[Any]) -> bool:  # pragma: no cover - both subclasses have their own
        raise NotImplementedError


class RemoteCallee(_RemoteSession):
    """Every callee of ``node`` in ``realm``, as one callee of this node's dealer."""

    session_id = 0
    authid: str | None = None
    authrole: str | None = None

    def __init__(self, cluster: ClusterNode, realm: Realm, node: str) -> None:
        super().__init__(cluster, realm, node)
        #: invocation id -> the caller's session id, for the calls in flight to the node
        self.calls: dict[int, int] = {}
        #: calls not yet handed to the node: invocation id -> (the invocation, its INVOCATION)
        self.handing: dict[int, tuple[Invocation, list[Any]]] = {}
        #: False once a call found nobody listening at the node (until one reaches it)
        self.reachable = True
        #: progressive invocations whose last chunk is yet to come: invocation id -> procedure
        self.streams: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"<RemoteCallee {self.node} realm={self.realm and self.realm.name}>"

    def invoke(self, invocation: Invocation, message: list[Any]) -> bool:
        """The dealer's INVOCATION: forward the call; False if it cannot be encoded."""
        _, invocation_id, registration_id, details, *payload = message
        assert message[0] == INVOCATION
        caller = invocation.caller
        caller_id = caller.session_id
        assert caller_id is not None  # routing sees only sessions that joined
        procedure = details.get("procedure", invocation.registration.uri)
        options: dict[str, Any] = {}
        if invocation.progress:
            options["receive_progress"] = True
        if "caller" in details:
            options["disclose_me"] = True
        streaming = details.get("progress") is True
        if streaming:
            options["progress"] = True
        for key in PASSTHRU_ATTRIBUTES:
            if key in details:
                options[key] = details[key]
        sent = self.cluster.forward_call(
            self, invocation_id, caller_id, caller.authid, caller.authrole, procedure, options, payload
        )
        if sent:
            self.calls[invocation_id] = caller_id
            self.handing[invocation_id] = (invocation, message)
            if streaming:
                self.streams[invocation_id] = procedure
        return sent

    def handed(self, invocation_id: int) -> None:
        """The node got the call."""
        self.reachable = True
        self.handing.pop(invocation_id, None)

    def not_handed(self, invocation_id: int, why: str) -> None:
        """Nobody listens at the node (it is gone): nothing was invoked, so the call may
        go to another callee of its registration (not a progressive invocation: its next
        chunks may have gone to the node already)."""
        self.reachable = False
        if invocation_id in self.streams:
            self.fail(invocation_id, why)
            return
        pending = self.handing.pop(invocation_id, None)
        if pending is None or self.calls.pop(invocation_id, None) is None or self.realm is None:
            return
        invocation, message = pending
        self.realm.dealer.redirect(invocation, message, why)

    def send(self, message: list[Any]) -> bool:
        """The dealer's INTERRUPT (cancel, timeout, the caller left) or the next chunk of a
        progressive invocation (INVOCATION): forward it. False: the chunk cannot be encoded."""
        kind, invocation_id = message[0], message[1]
        caller_id = self.calls.get(invocation_id)
        if caller_id is None:
            return True  # finished meanwhile
        if kind == INVOCATION:
            progress = message[3].get("progress") is True
            procedure = self.streams.get(invocation_id) if progress else self.streams.pop(invocation_id, None)
            if procedure is None:
                return True
            return self.cluster.forward_chunk(self, caller_id, invocation_id, procedure, progress, message[4:])
        if kind == INTERRUPT:
            options = message[2]
            if options.get("mode") != "kill":
                self._forget(invocation_id)
            self.cluster.forward_cancel(self, caller_id, invocation_id, options.get("mode", "killnowait"))
        return True

    def _forget(self, invocation_id: int) -> None:
        self.calls.pop(invocation_id, None)
        self.handing.pop(invocation_id, None)
        self.streams.pop(invocation_id, None)

    def answered(self, invocation_id: int, message: list[Any]) -> None:
        """The node's RESULT or ERROR for a call: to the dealer, as this callee's answer."""
        realm = self.realm
        self.handing.pop(invocation_id, None)
        if realm is None or invocation_id not in self.calls:
            return  # finished meanwhile (timeout, cancel, the caller left)
        dealer = realm.dealer
        details = message[3 if message[0] == ERROR else 2]
        # what the caller's node passes on of the answer's details: passthru attributes
        options = {key: details[key] for key in PASSTHRU_ATTRIBUTES if key in details} if type(details) is dict else {}
        if message[0] == RESULT:
            progress = type(details) is dict and details.get("progress") is True
            if progress:
                options["progress"] = True
            else:
                self._forget(invocation_id)
            dealer.on_yield(self, [70, invocation_id, options, *message[3:]])
        elif message[0] == ERROR and len(message) >= 5:
            self._forget(invocation_id)
            dealer.on_invocation_error(self, [ERROR, INVOCATION, invocation_id, options, *message[4:]])

    def fail(self, invocation_id: int, why: str) -> None:
        """The call may never have reached the node (the link is down, or it is lost)."""
        self.handing.pop(invocation_id, None)
        self.streams.pop(invocation_id, None)
        if self.calls.pop(invocation_id, None) is not None and self.realm is not None:
            self.realm.dealer.on_invocation_error(
                self, [ERROR, INVOCATION, invocation_id, {}, ErrorURI.CANCELED, [why]]
            )


class RemoteCaller(_RemoteSession):
    """A session of ``node`` calling procedures of this node."""

    def __init__(
        self, cluster: ClusterNode, realm: Realm, node: str, session_id: int, authid: str | None, authrole: str | None
    ) -> None:
        super().__init__(cluster, realm, node)
        self.session_id = session_id
        self.authid = authid
        self.authrole = authrole
        #: its progressive invocations here whose next chunks may still come (invocation ids)
        self.streams: set[int] = set()

    def __repr__(self) -> str:
        return f"<RemoteCaller {self.session_id} on {self.node}>"

    def send(self, message: list[Any]) -> bool:
        """The dealer's RESULT or ERROR for one of this caller's calls: back to its node."""
        self.cluster.forward_answer(self, message)
        return True


if TYPE_CHECKING:
    # mypy checks that both stand-ins are sessions as routing sees them
    def _routed(callee: RemoteCallee, caller: RemoteCaller) -> tuple[RoutedSession, RoutedSession]:
        return callee, caller
