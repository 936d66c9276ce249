"""The websocket-promisifier API over a promisifier :class:`~promisifier.client.Session`.

In websocket-promisifier, each end of a WebSocket offers *services* (functions by
service id) and calls the services of the other end with ``send(service_id, *params)``,
which returns a promise. Here both ends are WAMP sessions joined to the same realm of a
relay, and each names the other: ``create_websocket_promisifier(session, peer)`` makes
the object through which this session offers services to, and calls the services of,
the peer named ``peer``::

    # process A (peer name "alice")                  # process B (peer name "bob")
    a = create_websocket_promisifier(s, "bob",       b = create_websocket_promisifier(s, "alice",
                                     name="alice")                                    name="bob")
    a.add_service("add", lambda x, y: x + y)         total = yield b.send("add", 2, 3)   # 5

**URI scheme on the relay.** A service is a registered procedure::

    promisifier.peer.<name>.service.<service_id>

``<name>`` is the peer name of the side that offers the service (``name=``, by default the
session's ``authid``: with ticket or WAMP-CRA authentication that is the user name, for
an anonymous session it is ``anonymous-<session id>``). ``send(service_id, ...)`` calls
``promisifier.peer.<peer>.service.<service_id>``. A peer name must be one valid WAMP URI
component (no ``.``, no whitespace, no ``#``, not empty). A service id is a string or an
integer; the URI holds its text, so ``7`` and ``"7"`` are the same service. Any WAMP
client can call or offer these services by those URIs.

**Events.** websocket-promisifier has no separate event channel: one side offers a
service that receives events (e.g. ``add_service("event", on_event)``) and the other
side ``send("event", ...)``\\ s to it; the returned Deferred tells that it was received.

**Ending.** :attr:`WebSocketPromisifier.promise` fires with ``(code, reason)`` when the
session's connection ends with close code 1000, and fails with
:class:`~promisifier.client.ConnectionClosed` (``.code``, ``.reason``) otherwise.
:meth:`WebSocketPromisifier.close` closes the connection with 1000 and a reason shortened
to 123 bytes of UTF-8 at a character boundary (the WebSocket limit). The code and reason
reported are those of the close frame received: on the side that closed, the relay's
answer (code 1000, usually no reason); on the relay, the reason sent.

Several promisifiers may share one session (one per peer, or several peers offering to
the same relay): the session carries them all, and :attr:`stats` reports the session's
bytes and messages beside this promisifier's own request counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from promisifier.client.callee import as_deferred
from promisifier.client.errors import ApplicationError, ConnectionLost, NotConnected
from promisifier.client.session import Session
from promisifier.compat.common import Outcome
from promisifier.transport.closing import truncate_reason
from promisifier.wire import is_valid_uri

__all__ = ["PromisifierStats", "WebSocketPromisifier", "create_websocket_promisifier", "service_uri"]

#: the first part of every service URI
URI_PREFIX = "promisifier.peer."

ServiceId = str | int


def _check_peer_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not is_valid_uri(name) or "." in name:
        raise ValueError(f"{what} must be one WAMP URI component (no '.', whitespace or '#'), got {name!r}")
    return name


def _service_text(service_id: ServiceId) -> str:
    if isinstance(service_id, bool) or not isinstance(service_id, (str, int)):
        raise TypeError(f"a service id is a str or an int, not {type(service_id).__name__}")
    text = str(service_id)
    if not is_valid_uri(text):
        raise ValueError(f"service id {service_id!r} cannot be part of a WAMP URI (empty, whitespace, '#' or '..')")
    return text


def service_uri(peer: str, service_id: ServiceId) -> str:
    """The procedure URI of service ``service_id`` offered by peer ``peer``."""
    return f"{URI_PREFIX}{_check_peer_name(peer, 'peer name')}.service.{_service_text(service_id)}"


def _gather(ds: list[defer.Deferred[Any]]) -> defer.Deferred[list[Any]]:
    """All results, or the first failure itself (not wrapped in FirstError)."""

    def unwrap(failure: Failure) -> Failure:
        return failure.value.subFailure if isinstance(failure.value, defer.FirstError) else failure

    return defer.gatherResults(ds, consumeErrors=True).addErrback(unwrap)


@dataclass(frozen=True)
class PromisifierStats:
    """Counters of one promisifier; bytes and messages are those of its whole session."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    #: send() calls made through this promisifier
    requests_sent: int = 0
    #: calls of this promisifier's services by the peer (answered or not)
    requests_received: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class WebSocketPromisifier:
    """Services offered to one peer and calls of that peer's services, over one session.

    Made by :func:`create_websocket_promisifier`.
    """

    def __init__(self, session: Session, peer: str, *, name: str | None = None) -> None:
        self.session = session
        #: the peer name of the other side (whose services :meth:`send` calls)
        self.peer = _check_peer_name(peer, "peer name")
        own = name if name is not None else session.authid
        #: this side's peer name (under which :meth:`add_service` offers)
        self.name = _check_peer_name(own, "name (this side's peer name; pass name=...)")
        self._services: dict[str, Callable[..., Any]] = {}
        self._registrations: dict[str, Outcome] = {}
        self._requests_sent = 0
        self._requests_received = 0

    def __repr__(self) -> str:
        return f"<WebSocketPromisifier {self.name!r} -> {self.peer!r} services={sorted(self._services)}>"

    # -- facts ------------------------------------------------------------------------

    @property
    def conn_id(self) -> int | None:
        """The WAMP session id (unique on the relay while the session lives)."""
        return self.session.session_id

    @property
    def promise(self) -> defer.Deferred[tuple[int, str]]:
        """A Deferred for the end of the connection: ``(code, reason)`` on 1000, else a
        :class:`~promisifier.client.ConnectionClosed` failure (a new Deferred per read)."""
        return self.session.closed

    @property
    def stats(self) -> PromisifierStats:
        """Bytes and messages of the session, and requests made and served here."""
        s = self.session.stats
        return PromisifierStats(
            bytes_sent=s.bytes_out,
            bytes_received=s.bytes_in,
            messages_sent=s.messages_out,
            messages_received=s.messages_in,
            requests_sent=self._requests_sent,
            requests_received=self._requests_received,
        )

    def services(self) -> list[str]:
        """The ids (as text) of the services offered now."""
        return list(self._services)

    # -- services ---------------------------------------------------------------------

    def add_service(self, service_id: ServiceId, fn: Callable[..., Any]) -> defer.Deferred[None]:
        """Offer ``fn(*params)`` as ``service_id`` to the peer; fires once registered.

        ``fn`` may return a value, a Deferred or be an ``async def``; raising
        :class:`~promisifier.ApplicationError` answers with that error, any other
        exception with ``wamp.error.runtime_error``. Adding an id again replaces its
        function at once (the registration stays).
        """
        key = _service_text(service_id)
        if not callable(fn):
            raise TypeError(f"the service function must be callable, got {fn!r}")
        replacing = key in self._services
        self._services[key] = fn
        if replacing:
            return self._when_registered(key)
        uri = service_uri(self.name, key)
        outcome = Outcome(self.session.register(uri, lambda *args, **kwargs: self._serve(key, args, kwargs)))
        self._registrations[key] = outcome
        waiter = outcome.wait()

        def refused(failure: Failure) -> Failure:
            if self._registrations.get(key) is outcome:
                del self._registrations[key]
                self._services.pop(key, None)
            return failure

        return waiter.addCallbacks(lambda _: None, refused)

    def remove_service(self, service_id: ServiceId) -> defer.Deferred[None]:
        """Stop offering ``service_id`` (a no-op for an unknown id); fires when unregistered."""
        key = _service_text(service_id)
        self._services.pop(key, None)
        registered = self._registrations.pop(key, None)
        if registered is None:
            return defer.succeed(None)
        done: defer.Deferred[None] = defer.Deferred()

        def unregister(registration: Any) -> Any:
            if isinstance(registration, Failure) or registration is None:
                return None  # it was never registered
            return registration.unregister()

        def ended(result: Any) -> None:
            if isinstance(result, Failure) and not result.check(ConnectionLost, NotConnected):
                done.errback(result)
            else:
                done.callback(None)

        registered.wait().addBoth(unregister).addBoth(ended)
        return done

    def clear_services(self) -> defer.Deferred[None]:
        """Stop offering every service; fires when all are unregistered."""
        return _gather([self.remove_service(key) for key in list(self._services)]).addCallback(lambda _: None)

    def connect(self) -> defer.Deferred[WebSocketPromisifier]:
        """Fires with this promisifier once every service added so far is registered
        (fails with the first refusal, e.g. ``wamp.error.procedure_already_exists``)."""
        return _gather([self._when_registered(key) for key in list(self._registrations)]).addCallback(lambda _: self)

    # -- calls ------------------------------------------------------------------------

    def send(self, service_id: ServiceId, *params: Any) -> defer.Deferred[Any]:
        """Call the peer's service ``service_id`` with ``params``.

        Fires with its result (one value; ``None``; or a
        :class:`~promisifier.CallResult` for several). Fails with
        :class:`~promisifier.ApplicationError` (``wamp.error.no_such_procedure`` when
        the peer does not offer it, or the service's own error) or
        :class:`~promisifier.ConnectionLost`.
        """
        try:
            uri = service_uri(self.peer, service_id)
        except (TypeError, ValueError) as error:
            return defer.fail(error)
        self._requests_sent += 1
        return self.session.call(uri, *params)

    def close(self, reason: str | None = None) -> defer.Deferred[tuple[int, str]]:
        """Close the connection with 1000 and ``reason`` (shortened to 123 bytes of UTF-8).

        Fires with ``(code, reason)`` once closed (as :attr:`promise` does on 1000).
        """
        return self.session.close(1000, truncate_reason(reason or ""))

    # -- helpers ------------------------------------------------------------------------

    def _serve(self, key: str, args: tuple, kwargs: dict) -> Any:
        self._requests_received += 1
        fn = self._services.get(key)
        if fn is None:  # removed while the UNREGISTER was under way
            raise ApplicationError("wamp.error.no_such_procedure", f"service {key!r} was removed")
        return as_deferred(fn(*args, **kwargs))

    def _when_registered(self, key: str) -> defer.Deferred[None]:
        registered = self._registrations.get(key)
        if registered is None:
            return defer.succeed(None)
        return registered.wait().addCallback(lambda _: None)


def create_websocket_promisifier(session: Session, peer: str, *, name: str | None = None) -> WebSocketPromisifier:
    """A :class:`WebSocketPromisifier` on ``session`` for the peer named ``peer``.

    ``name`` is this side's peer name (default: the session's authid). See the module
    documentation for the URIs used on the relay.
    """
    return WebSocketPromisifier(session, peer, name=name)
