"""The roles and advanced features the client announces in HELLO, and reading WELCOME's.

Every role announces payload passthru mode (a :class:`Passthru` argument is sent and
received as an opaque payload).

Only what the client really implements is announced:

* caller: progressive results (``on_progress``), progressive call invocations
  (``call_stream``), canceling (``Deferred.cancel()`` sends
  CANCEL), call timeout (``timeout`` sent as ``CALL.Options.timeout`` and enforced
  locally), caller identification (``disclose_me``);
* callee: progressive results (the ``progress`` keyword), progressive call invocations
  (``register(..., stream_input=True)``), canceling (INTERRUPT cancels
  the running function and answers ``wamp.error.canceled``), pattern-based and shared
  registrations (``match``, ``invoke``), registration revocation (UNREGISTERED from the
  router deactivates the registration);
* publisher: publisher exclusion (``exclude_me``), black/white listing (``exclude``,
  ``eligible``);
* subscriber: pattern-based subscriptions (``match``), subscription revocation.
"""

from __future__ import annotations

import copy
from typing import Any

#: HELLO.Details.agent
AGENT = "promisifier-client/0.1"

_ROLES: dict[str, dict[str, Any]] = {
    "caller": {
        "features": {
            "progressive_call_results": True,
            "progressive_call_invocations": True,
            "payload_passthru_mode": True,
            "call_canceling": True,
            "call_timeout": True,
            "caller_identification": True,
        }
    },
    "callee": {
        "features": {
            "progressive_call_results": True,
            "progressive_call_invocations": True,
            "payload_passthru_mode": True,
            "call_canceling": True,
            "pattern_based_registration": True,
            "shared_registration": True,
            "registration_revocation": True,
        }
    },
    "publisher": {
        "features": {
            "publisher_exclusion": True,
            "subscriber_blackwhite_listing": True,
            "payload_passthru_mode": True,
        }
    },
    "subscriber": {
        "features": {
            "pattern_based_subscription": True,
            "subscription_revocation": True,
            "payload_passthru_mode": True,
        }
    },
}


def client_roles() -> dict[str, dict[str, Any]]:
    """HELLO.Details.roles (a fresh copy)."""
    return copy.deepcopy(_ROLES)


def announced(roles: Any) -> dict[str, frozenset[str]]:
    """Role name -> names of the features set to true in WELCOME.Details.roles."""
    result: dict[str, frozenset[str]] = {}
    if not isinstance(roles, dict):
        return result
    for role, details in roles.items():
        found: frozenset[str] = frozenset()
        if isinstance(details, dict):
            feats = details.get("features")
            if isinstance(feats, dict):
                found = frozenset(name for name, value in feats.items() if value is True)
        result[role] = found
    return result


__all__ = ["AGENT", "announced", "client_roles"]
