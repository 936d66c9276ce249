"""The one registry of ``python -m promisifier`` commands.

A command is a function that takes the arguments after its name and returns the exit code;
it parses them itself. :func:`command` registers one under its name with a one-line
summary. :mod:`promisifier.__main__` registers ``relay``, ``cryptosign-key`` and
``scram-hash``, :mod:`promisifier.cli` the client commands; ``python -m promisifier
--help`` lists :data:`COMMANDS` in the order they were added.
"""

from __future__ import annotations

from collections.abc import Callable

PROG = "python -m promisifier"

CommandFunction = Callable[[list[str]], int]

#: name -> (one-line summary, function), in the order they were added
COMMANDS: dict[str, tuple[str, CommandFunction]] = {}


def command(name: str, summary: str) -> Callable[[CommandFunction], CommandFunction]:
    """Register ``function(argv) -> exit code`` as the command ``name``."""

    def register(function: CommandFunction) -> CommandFunction:
        if name in COMMANDS and COMMANDS[name][1] is not function:
            raise ValueError(f"two commands named {name!r}")
        COMMANDS[name] = (summary, function)
        return function

    return register


__all__ = ["COMMANDS", "PROG", "CommandFunction", "command"]
