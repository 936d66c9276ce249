"""The correlation table of a client session: requests waiting for answers, and handles.

One :class:`Correlation` per :class:`~promisifier.client.session.Session`. Each request
sent (CALL, REGISTER, UNREGISTER, SUBSCRIBE, UNSUBSCRIBE, acknowledged PUBLISH) has one
entry keyed by its request id, holding its kind and its Deferred. The entry leaves the
table exactly once: answered (RESULT, REGISTERED, ..., ERROR), timed out, cancelled, or
failed with :class:`ConnectionLost` by :meth:`Correlation.end` when the session ends.
Answers whose id is not in the table, or whose kind does not match, are ignored (debug log).

The table also keeps what the answers created: registrations by id (for INVOCATIONs) and
subscriptions by id (for EVENTs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client.callee import as_deferred, received_payload
from promisifier.client.errors import TIMEOUT_URI, ApplicationError, CallTimeout, ConnectionLost
from promisifier.client.types import CallResult, EventDetails, Registration, Subscription
from promisifier.client.user_errors import UserErrorHook
from promisifier.wire import EncodeError
from promisifier.wire.messages import (
    CALL,
    CANCEL,
    PUBLISH,
    REGISTER,
    SUBSCRIBE,
    UNREGISTER,
    UNSUBSCRIBE,
    Message,
    message_name,
)

log = Logger(namespace="promisifier.client")


@dataclass(frozen=True, slots=True)
class CallData:
    """What a CALL's entry keeps: its local timeout (for the error text)."""

    #: seconds (None or 0: none)
    timeout: float | None


@dataclass(frozen=True, slots=True)
class RegisterData:
    """What a REGISTER's entry keeps to make the :class:`Registration` from REGISTERED."""

    fn: Callable[..., Any]
    match: str
    invoke: str
    details: bool
    stream_input: bool = False


@dataclass(frozen=True, slots=True)
class SubscribeData:
    """What a SUBSCRIBE's entry keeps to make the :class:`Subscription` from SUBSCRIBED."""

    handler: Callable[..., Any]
    match: str
    details: bool


#: what an entry keeps, by kind: CALL, REGISTER, SUBSCRIBE; UNREGISTER and UNSUBSCRIBE
#: keep the handle they end; an acknowledged PUBLISH keeps nothing
RequestData = CallData | RegisterData | SubscribeData | Registration | Subscription | None


class Request:
    """One entry of the correlation table."""

    __slots__ = ("kind", "deferred", "timer", "on_progress", "target", "data")

    def __init__(self, kind: int, deferred: defer.Deferred[Any], target: str, data: RequestData = None) -> None:
        #: the request's message type (CALL, REGISTER, ...)
        self.kind = kind
        self.deferred = deferred
        #: procedure or topic URI (for error texts)
        self.target = target
        #: what the answer needs (see :data:`RequestData`)
        self.data = data
        #: the local timeout (an IDelayedCall), if any
        self.timer: Any = None
        self.on_progress: Callable[..., Any] | None = None


class Correlation:
    """Request id -> pending :class:`Request`; registration and subscription ids -> handles.

    What it needs of its session are callables: ``send(message)`` (raises ``EncodeError``),
    ``on_user_error(failure, what)`` for exceptions of the application's handlers,
    ``unregister`` and ``unsubscribe`` for the handles it makes, and ``session_id()``
    for its log.
    """

    def __init__(
        self,
        send: Callable[[Message], None],
        on_user_error: UserErrorHook,
        unregister: Callable[[Registration], defer.Deferred[None]],
        unsubscribe: Callable[[Subscription], defer.Deferred[None]],
        session_id: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._send = send
        self._on_user_error = on_user_error
        self._unregister = unregister
        self._unsubscribe = unsubscribe
        self._session_id = session_id
        self.requests: dict[int, Request] = {}
        self.registrations: dict[int, Registration] = {}
        self.subscriptions: dict[int, list[Subscription]] = {}
        self.events_received = 0

    def __len__(self) -> int:
        return len(self.requests)

    def send(self, request_id: int, request: Request, message: Message) -> defer.Deferred[Any] | None:
        """Send a request and enter it in the table; a failed Deferred if it could not be sent."""
        try:
            self._send(message)
        except EncodeError as error:  # the arguments cannot be serialized
            return defer.fail(error)
        self.requests[request_id] = request
        return None

    def end(self, error: ConnectionLost) -> None:
        """The session ended: fail every pending request and deactivate every handle."""
        requests, self.requests = self.requests, {}
        for request in requests.values():
            if request.timer is not None and request.timer.active():
                request.timer.cancel()
        for registration in self.registrations.values():
            registration.active = False
        self.registrations.clear()
        for subscriptions in self.subscriptions.values():
            for subscription in subscriptions:
                subscription.active = False
        self.subscriptions.clear()
        for request in requests.values():
            if not request.deferred.called:
                request.deferred.errback(ConnectionLost(str(error), error.code, error.reason))

    # -- answers ------------------------------------------------------------------------

    def take(self, message: Message, request_id: int, kind: int) -> Request | None:
        """Remove and return the pending request ``request_id`` if it is of ``kind``."""
        request = self.requests.get(request_id)
        if request is None or request.kind != kind:
            log.debug(
                "session {id}: {what} for unknown request {req} ignored",
                id=self._session_id(),
                what=message_name(message[0]),
                req=request_id,
            )
            return None
        del self.requests[request_id]
        if request.timer is not None and request.timer.active():
            request.timer.cancel()
        return request

    def on_result(self, message: Message) -> None:
        """RESULT: [50, CALL.Request|id, Details|dict, Arguments, ArgumentsKw]."""
        request_id, details = message[1], message[2]
        args, kwargs = received_payload(message, 3, details)
        if details.get("progress") is True:
            request = self.requests.get(request_id)
            if request is None or request.kind != CALL or request.on_progress is None:
                log.debug("progressive RESULT for unknown call {req} ignored", req=request_id)
                return
            what = f"on_progress of {request.target}"
            try:
                result = request.on_progress(*args, **kwargs)
            except Exception:
                self._on_user_error(Failure(), what)
            else:
                as_deferred(result).addErrback(self._on_user_error, what)
            return
        request = self.take(message, request_id, CALL)
        if request is None:
            return
        if kwargs or len(args) > 1:
            request.deferred.callback(CallResult(list(args), dict(kwargs)))
        else:
            request.deferred.callback(args[0] if args else None)

    def on_error(self, message: Message) -> None:
        """ERROR: [8, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri, Arguments, ArgumentsKw]."""
        request_type, request_id, error_uri = message[1], message[2], message[4]
        request = self.take(message, request_id, request_type)
        if request is None:
            return
        args, kwargs = received_payload(message, 5, message[3])
        if request_type == CALL and error_uri == TIMEOUT_URI:
            request.deferred.errback(CallTimeout(*args, **kwargs))
        else:
            request.deferred.errback(ApplicationError(error_uri, *args, **kwargs))

    def on_registered(self, message: Message) -> None:
        """REGISTERED: [65, REGISTER.Request|id, Registration|id]."""
        request = self.take(message, message[1], REGISTER)
        if request is not None:
            data = request.data
            assert isinstance(data, RegisterData)
            registration = Registration(
                self._unregister,
                message[2],
                request.target,
                data.fn,
                data.match,
                data.invoke,
                data.details,
                data.stream_input,
            )
            self.registrations[registration.id] = registration
            request.deferred.callback(registration)

    def on_unregistered(self, message: Message) -> None:
        """UNREGISTERED: [67, UNREGISTER.Request|id] or, revoked by the router, [67, 0, {registration}]."""
        request_id = message[1]
        if request_id == 0:
            details = message[2] if len(message) > 2 else {}
            registration = self.registrations.pop(details.get("registration"), None)  # type: ignore[arg-type]
            if registration is not None:
                registration.active = False
                log.info("registration of {p} revoked by the router", p=registration.procedure)
            return
        request = self.take(message, request_id, UNREGISTER)
        if request is not None:
            ended = request.data
            assert isinstance(ended, Registration)
            self.registrations.pop(ended.id, None)
            ended.active = False
            request.deferred.callback(None)

    def on_subscribed(self, message: Message) -> None:
        """SUBSCRIBED: [33, SUBSCRIBE.Request|id, Subscription|id]."""
        request = self.take(message, message[1], SUBSCRIBE)
        if request is not None:
            data = request.data
            assert isinstance(data, SubscribeData)
            subscription = Subscription(
                self._unsubscribe, message[2], request.target, data.handler, data.match, data.details
            )
            if len(message) > 3 and "_recovered" in message[3]:  # the outcome of a SUBSCRIBE with _resume
                subscription.recovered = message[3]["_recovered"] is True
            self.subscriptions.setdefault(subscription.id, []).append(subscription)
            request.deferred.callback(subscription)

    def on_unsubscribed(self, message: Message) -> None:
        """UNSUBSCRIBED: [35, UNSUBSCRIBE.Request|id] or, revoked by the router, [35, 0, {subscription}]."""
        request_id = message[1]
        if request_id == 0:
            details = message[2] if len(message) > 2 else {}
            for subscription in self.subscriptions.pop(details.get("subscription"), []):  # type: ignore[arg-type]
                subscription.active = False
            return
        request = self.take(message, request_id, UNSUBSCRIBE)
        if request is not None:
            unsubscribed = request.data
            assert isinstance(unsubscribed, Subscription)
            unsubscribed.active = False
            self.forget(unsubscribed)
            request.deferred.callback(None)

    def on_published(self, message: Message) -> None:
        """PUBLISHED: [17, PUBLISH.Request|id, Publication|id]."""
        request = self.take(message, message[1], PUBLISH)
        if request is not None:
            request.deferred.callback(message[2])

    def on_event(self, message: Message) -> None:
        """EVENT: [36, Subscription|id, Publication|id, Details|dict, Arguments, ArgumentsKw]."""
        subscriptions = self.subscriptions.get(message[1])
        if not subscriptions:
            log.debug("EVENT for unknown subscription {sub} ignored", sub=message[1])
            return
        self.events_received += 1
        details = message[3]
        args, kwargs = received_payload(message, 4, details)
        offset, epoch = details.get("_offset"), details.get("_epoch")
        position = (epoch, offset) if type(offset) is int and type(epoch) is str else None
        replayed = details.get("_recovered") is True
        for subscription in list(subscriptions):
            recovered: bool | None = None
            if replayed:
                recovered = True
            elif subscription.recovered is False:
                recovered = False  # the gap is reported once, with the first live event
                subscription.recovered = None
            if position is not None:
                subscription.position = position
            if subscription.details:
                handler_kwargs = dict(kwargs)
                handler_kwargs["details"] = event_details(message, subscription, recovered)
            else:
                handler_kwargs = kwargs
            try:
                result = subscription.handler(*args, **handler_kwargs)
            except Exception:
                self._on_user_error(Failure(), f"event handler for {subscription.topic}")
                continue
            if result is not None:
                as_deferred(result).addErrback(self._on_user_error, f"event handler for {subscription.topic}")

    def forget(self, subscription: Subscription) -> None:
        """Remove one local subscription from the shared router subscription id."""
        shared = self.subscriptions.get(subscription.id)
        if shared is not None:
            if subscription in shared:
                shared.remove(subscription)
            if not shared:
                del self.subscriptions[subscription.id]

    # -- cancel and timeout -------------------------------------------------------------

    def cancel_call(self, request_id: int, mode: str, send_cancel: bool) -> None:
        """Canceller of a call's Deferred: Twisted then fails it with CancelledError."""
        request = self.requests.pop(request_id, None)
        if request is None:
            return
        if request.timer is not None and request.timer.active():
            request.timer.cancel()
        if send_cancel:
            self._send([CANCEL, request_id, {"mode": mode}])

    def call_timed_out(self, request_id: int, send_cancel: bool) -> None:
        """The local timer of a call fired: fail it with CallTimeout (CANCEL killnowait)."""
        request = self.requests.pop(request_id, None)
        if request is None:
            return
        request.timer = None
        if send_cancel:
            self._send([CANCEL, request_id, {"mode": "killnowait"}])
        timeout = request.data.timeout if isinstance(request.data, CallData) else None
        request.deferred.errback(CallTimeout(f"call to {request.target} timed out after {timeout} s"))


def event_details(message: Message, subscription: Subscription, recovered: bool | None = None) -> EventDetails:
    """The :class:`EventDetails` of an EVENT for one of the session's subscriptions."""
    details = message[3]
    offset, epoch = details.get("_offset"), details.get("_epoch")
    return EventDetails(
        offset=offset if type(offset) is int else None,
        epoch=epoch if type(epoch) is str else None,
        recovered=recovered,
        topic=details.get("topic", subscription.topic),
        subscription=subscription.id,
        publication=message[2],
        publisher=details.get("publisher"),
        publisher_authid=details.get("publisher_authid"),
        publisher_authrole=details.get("publisher_authrole"),
        retained=details.get("retained") is True,
    )


__all__ = ["CallData", "Correlation", "RegisterData", "Request", "RequestData", "SubscribeData", "event_details"]
