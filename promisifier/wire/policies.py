"""The values WAMP's advanced profile gives some options: match policies (REGISTER,
SUBSCRIBE), invocation policies (shared registrations) and cancel modes (CANCEL)."""

from __future__ import annotations

#: REGISTER.Options.match and SUBSCRIBE.Options.match
MATCH_POLICIES = ("exact", "prefix", "wildcard")
#: REGISTER.Options.invoke: which of the callees of a shared registration gets a call
INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")
#: CANCEL.Options.mode
CANCEL_MODES = ("skip", "kill", "killnowait")

__all__ = ["CANCEL_MODES", "INVOKE_POLICIES", "MATCH_POLICIES"]
