"""Exceptions raised by user code that the client calls: one hook decides what happens.

Event handlers, procedures (when the exception is not an ``ApplicationError``),
``on_progress`` callbacks, ``on_session`` and event listeners are the application's code:
an exception they raise never propagates into the client. It goes to the session's (or
reconnecting client's) ``on_user_error(failure, what)`` instead, whose default,
:func:`log_user_error`, logs it with its traceback at error level.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

log = Logger(namespace="promisifier.client")

#: ``on_user_error(failure, what)``: ``what`` names the code that raised, e.g.
#: ``"event handler for com.example.topic"``
UserErrorHook = Callable[[Failure, str], None]


def log_user_error(failure: Failure, what: str) -> None:
    """The default ``on_user_error``: log the failure with its traceback at error level."""
    log.failure("{what} raised", failure, LogLevel.error, what=what)


__all__ = ["UserErrorHook", "log_user_error"]
