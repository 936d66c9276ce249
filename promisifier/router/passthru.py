"""Payload passthru mode (advanced/payload_passthru_mode.md): opaque payloads the router
forwards untouched, end-to-end encrypted ones among them.

A CALL, YIELD, PUBLISH or ERROR carrying ``ppt_scheme`` in its Options (or Details) has a
passthru payload: its ``ppt_*`` attributes go into the INVOCATION, RESULT, EVENT or ERROR
the router sends on, and its payload (one binary value where Arguments would be, checked by
the wire layer) goes on as it came. autobahn-python's end-to-end encryption (cryptobox)
uses the older names of the same thing, ``enc_algo``, ``enc_key`` and ``enc_serializer``,
and announces ``payload_transparency``: both are treated alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promisifier.router.routed import RoutedSession

#: the attributes forwarded, the specification's and autobahn-python's
PASSTHRU_ATTRIBUTES = (
    "ppt_scheme",
    "ppt_serializer",
    "ppt_cipher",
    "ppt_keyid",
    "enc_algo",
    "enc_key",
    "enc_serializer",
)
#: the client features that announce support, the specification's and autobahn-python's
PASSTHRU_FEATURES = ("payload_passthru_mode", "payload_transparency")


class PassthruError(ValueError):
    """A passthru attribute that is not a string."""


def passthru_attributes(options: dict[str, Any]) -> dict[str, Any] | None:
    """The passthru attributes of a message's Options or Details, or None when it has none."""
    if "ppt_scheme" not in options and "enc_algo" not in options:
        return None
    found = {key: options[key] for key in PASSTHRU_ATTRIBUTES if key in options}
    for key, value in found.items():
        if type(value) is not str:
            raise PassthruError(f"option {key!r} must be a string")
    return found


def supports_passthru(session: RoutedSession, role: str) -> bool:
    """The session announced payload passthru for ``role`` (either feature name)."""
    return any(session.has_feature(role, feature) for feature in PASSTHRU_FEATURES)
