"""The one error of a refused authentication."""

from __future__ import annotations


class AuthenticationFailed(Exception):
    """The credentials were wrong; the session gets ABORT wamp.error.authentication_failed.

    The message (e.g. "unknown public key") is for the relay's log only: every refusal
    looks the same to the client, so that it cannot tell which part was wrong.
    """
