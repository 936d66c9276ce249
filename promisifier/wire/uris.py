"""URI rules of WAMP: loose or strict components, with or without empty components.

Empty components are allowed only where patterns are (wildcard registrations and
subscriptions). Results are cached: the same few URIs are checked over and over.
"""

from __future__ import annotations

import re
from functools import lru_cache

from promisifier.wire.errors import ProtocolError

_LOOSE = re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$")
_LOOSE_EMPTY = re.compile(r"^(([^\s.#]+\.)|\.)*([^\s.#]+)?$")
_STRICT = re.compile(r"^([0-9a-z_]+\.)*([0-9a-z_]+)$")
_STRICT_EMPTY = re.compile(r"^(([0-9a-z_]+\.)|\.)*([0-9a-z_]+)?$")


def is_valid_uri(uri: object, strict: bool = False, allow_empty: bool = False) -> bool:
    """True when ``uri`` is a string that follows the WAMP URI rules asked for."""
    if type(uri) is not str or not uri:
        return False
    return _matches(uri, strict, allow_empty)


@lru_cache(maxsize=4096)
def _matches(uri: str, strict: bool, allow_empty: bool) -> bool:
    if strict:
        pattern = _STRICT_EMPTY if allow_empty else _STRICT
    else:
        pattern = _LOOSE_EMPTY if allow_empty else _LOOSE
    # fullmatch, not match: "$" also matches before a trailing newline, so match() would
    # accept "com.myapp\n".
    return pattern.fullmatch(uri) is not None


def check_uri(uri: object, what: str = "URI", strict: bool = False, allow_empty: bool = False) -> str:
    """Return ``uri`` if valid, else raise :class:`ProtocolError` naming ``what``."""
    if not is_valid_uri(uri, strict, allow_empty):
        raise ProtocolError(f"{what}: invalid URI {uri!r}")
    return uri  # type: ignore[return-value]


#: Not in the specification: a configured limit of this router was reached (the ERROR or
#: ABORT message names the limit).
LIMIT_EXCEEDED = "promisifier.error.limit_exceeded"


class ErrorURI:
    """Error and close reason URIs defined by the WAMP specification."""

    INVALID_URI = "wamp.error.invalid_uri"
    NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
    PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
    NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
    NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
    NO_SUCH_REALM = "wamp.error.no_such_realm"
    NO_SUCH_ROLE = "wamp.error.no_such_role"
    NO_SUCH_SESSION = "wamp.error.no_such_session"
    INVALID_ARGUMENT = "wamp.error.invalid_argument"
    PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
    NOT_AUTHORIZED = "wamp.error.not_authorized"
    AUTHORIZATION_FAILED = "wamp.error.authorization_failed"
    AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
    NO_AUTH_METHOD = "wamp.error.no_auth_method"
    CANCELED = "wamp.error.canceled"
    TIMEOUT = "wamp.error.timeout"
    RUNTIME_ERROR = "wamp.error.runtime_error"
    OPTION_NOT_ALLOWED = "wamp.error.option_not_allowed"
    NO_ELIGIBLE_CALLEE = "wamp.error.no_eligible_callee"
    NO_AVAILABLE_CALLEE = "wamp.error.no_available_callee"
    FEATURE_NOT_SUPPORTED = "wamp.error.feature_not_supported"
    PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
    UNAVAILABLE = "wamp.error.unavailable"
    # close reasons (GOODBYE / ABORT)
    CLOSE_NORMAL = "wamp.close.normal"
    CLOSE_GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
    CLOSE_SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
    CLOSE_CLOSE_REALM = "wamp.close.close_realm"
    CLOSE_KILLED = "wamp.close.killed"
