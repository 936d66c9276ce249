"""The Deferred-based WAMP client: sessions, a reconnecting client, and their errors.

``connect(url, realm)`` fires with a joined :class:`Session`; :class:`Client` keeps one
joined across connection losses and restores registrations and subscriptions. This
package uses ``wire/`` and ``transport/`` and never imports the router.
"""

from promisifier.client.auth import compute_signature, derive_key
from promisifier.client.callee import InvocationChunks
from promisifier.client.connection import connect
from promisifier.client.errors import (
    ApplicationError,
    CallTimeout,
    ClientError,
    ConnectFailed,
    ConnectionClosed,
    ConnectionLost,
    ConnectTimeout,
    InvalidURL,
    NotConnected,
    SessionAborted,
)
from promisifier.client.handles import ClientRegistration, ClientSubscription
from promisifier.client.reconnect import Backoff, Client, ClientState
from promisifier.client.session import Session
from promisifier.client.tls import TlsOptions
from promisifier.client.types import (
    CallResult,
    EventDetails,
    InvocationDetails,
    Passthru,
    Registration,
    SessionState,
    SessionStats,
    Subscription,
)
from promisifier.client.user_errors import UserErrorHook, log_user_error

__all__ = [
    "ApplicationError",
    "Backoff",
    "CallResult",
    "CallTimeout",
    "Client",
    "ClientError",
    "ClientRegistration",
    "ClientState",
    "ClientSubscription",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionLost",
    "EventDetails",
    "InvalidURL",
    "InvocationChunks",
    "InvocationDetails",
    "NotConnected",
    "Passthru",
    "Registration",
    "Session",
    "SessionAborted",
    "SessionState",
    "SessionStats",
    "Subscription",
    "TlsOptions",
    "UserErrorHook",
    "compute_signature",
    "connect",
    "derive_key",
    "log_user_error",
]
