"""``python -m promisifier`` has one command registry (promisifier.commands), filled by the
relay's module and the client commands' module alike."""

from __future__ import annotations

import pytest

from promisifier import __main__ as main_module
from promisifier import cli, commands


def test_one_registry_holds_every_command():
    assert main_module.COMMANDS is cli.COMMANDS is commands.COMMANDS
    assert sorted(commands.COMMANDS) == [
        "call",
        "cryptosign-key",
        "list",
        "publish",
        "register",
        "relay",
        "scram-hash",
        "subscribe",
    ]


def test_a_second_command_of_the_same_name_is_refused():
    with pytest.raises(ValueError, match="two commands named 'call'"):
        commands.command("call", "another call")(lambda argv: 0)
    assert commands.COMMANDS["call"][0] == "call a procedure and print its result as JSON"
