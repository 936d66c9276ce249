"""promisifier: WAMP v2 RPC and publish/subscribe over WebSocket, on Twisted.

The public face of the package:

* :func:`connect` and :class:`Session` - the Deferred-based client;
* :class:`Router`, :class:`RouterConfig`, :class:`RealmConfig` - the router, to run as
  the relay (``twistd -n promisifier-relay``) or inside a Twisted program;
* :class:`ApplicationError` and the client's other errors.
"""

from promisifier.client import (
    ApplicationError,
    Backoff,
    CallResult,
    CallTimeout,
    Client,
    ClientError,
    ClientState,
    ConnectionClosed,
    ConnectionLost,
    ConnectTimeout,
    NotConnected,
    Registration,
    Session,
    SessionAborted,
    Subscription,
    connect,
)
from promisifier.embed import Router
from promisifier.router.auth import AuthConfig, Principal
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.config import RealmConfig, RouterConfig

__version__ = "0.1.0"

__all__ = [
    "ApplicationError",
    "AuthConfig",
    "Backoff",
    "CallResult",
    "CallTimeout",
    "Client",
    "ClientError",
    "ClientState",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionLost",
    "NotConnected",
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
