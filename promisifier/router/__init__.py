"""The WAMP router: realms, dealer (RPC) and broker (pub/sub), free of socket code."""

from promisifier.router.router import Router, RouterCore
from promisifier.router.router_config import RouterConfig
from promisifier.router.session import RouterSession, RouterSessionState, SessionState

__all__ = ["Router", "RouterConfig", "RouterCore", "RouterSession", "RouterSessionState", "SessionState"]
