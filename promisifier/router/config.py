"""The former name of :mod:`promisifier.router.router_config` (``config`` alone said
nothing: the relay's configuration file and the cluster's settings have modules of their
own)."""

from promisifier.router.router_config import Limits, RealmConfig, RouterConfig

__all__ = ["Limits", "RealmConfig", "RouterConfig"]
