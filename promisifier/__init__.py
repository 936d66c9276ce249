"""promisifier: WAMP v2 RPC and publish/subscribe over WebSocket, on Twisted.

The public face of the package:

* :func:`connect` and :class:`Session` - the Deferred-based client;
* :class:`Router`, :class:`RouterConfig`, :class:`RealmConfig` - the router, to run as
  the relay (``twistd -n promisifier-relay``) or inside a Twisted program;
* :class:`ApplicationError` and the client's other errors; :class:`EncodeError` (arguments
  that the connection's serializer cannot encode).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promisifier.lazy import lazy_names

if TYPE_CHECKING:
    from promisifier.client import (
        ApplicationError,
        Backoff,
        CallResult,
        CallTimeout,
        Client,
        ClientError,
        ClientRegistration,
        ClientState,
        ClientSubscription,
        ConnectFailed,
        ConnectionClosed,
        ConnectionLost,
        ConnectTimeout,
        EventDetails,
        InvalidURL,
        InvocationChunks,
        InvocationDetails,
        NotConnected,
        Passthru,
        Registration,
        Session,
        SessionAborted,
        Subscription,
        connect,
    )
    from promisifier.embed import Router
    from promisifier.router.auth import AuthConfig, Principal
    from promisifier.router.authz import Permission, RoleConfig
    from promisifier.router.router_config import RealmConfig, RouterConfig
    from promisifier.wire import EncodeError

# Imported on first use: the relay process needs the router, not the client library
# (every module costs memory in a process that runs for months).
_HOMES = {
    "Router": "promisifier.embed",
    "AuthConfig": "promisifier.router.auth",
    "Principal": "promisifier.router.auth",
    "Permission": "promisifier.router.authz",
    "RoleConfig": "promisifier.router.authz",
    "RealmConfig": "promisifier.router.router_config",
    "RouterConfig": "promisifier.router.router_config",
    "EncodeError": "promisifier.wire",
}


__version__ = "0.1.0"

__all__ = [
    "ApplicationError",
    "AuthConfig",
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
    "EncodeError",
    "EventDetails",
    "InvalidURL",
    "InvocationChunks",
    "InvocationDetails",
    "NotConnected",
    "Passthru",
    "Permission",
    "Principal",
    "RealmConfig",
    "Registration",
    "RoleConfig",
    "RouterConfig",
    "Router",
    "Session",
    "SessionAborted",
    "Subscription",
    "connect",
]

__getattr__, __dir__ = lazy_names(__name__, {name: _HOMES.get(name, "promisifier.client") for name in __all__})
