"""The WAMP router: realms, dealer (RPC) and broker (pub/sub), free of socket code."""

from promisifier.router.config import RouterConfig
from promisifier.router.router import Router
from promisifier.router.session import RouterSession, SessionState

__all__ = ["Router", "RouterConfig", "RouterSession", "SessionState"]
