"""The command line: ``python -m promisifier COMMAND [options]``.

Each command is a function that takes the arguments after its name and returns the exit
code; it parses them itself (argparse, or ``twisted.python.usage`` like ``relay``, whose
options are the ones of ``twistd promisifier-relay``). To add one, write the function and
decorate it with ``@command(name, summary)`` (:mod:`promisifier.commands`, the one
registry; the client commands are in :mod:`promisifier.cli`).
"""

from __future__ import annotations

import argparse
import sys

from promisifier import __version__
from promisifier.commands import COMMANDS, PROG, command


@command("relay", "run the relay (the options of `twistd -n promisifier-relay`; see relay --help)")
def relay(argv: list[str]) -> int:
    from twisted.internet import reactor, task
    from twisted.python import usage

    from promisifier.relay.command_line import RelayOptions
    from promisifier.relay.service import make_service

    options = RelayOptions()
    options.synopsis = f"Usage: {PROG} relay {RelayOptions.synopsis}"
    try:
        options.parseOptions(argv)
        service = make_service(options, reactor)
    except usage.UsageError as error:
        print(f"{PROG} relay: error: {error} (see --help)", file=sys.stderr)
        return 2
    task.react(_run_service, (service, options))  # exits the process: 0 after SIGTERM/SIGINT
    return 0  # not reached


@command("cryptosign-key", "make a WAMP-Cryptosign key file, or print the public key of one")
def cryptosign_key(argv: list[str]) -> int:
    import os

    from promisifier.wire import cryptosign

    parser = argparse.ArgumentParser(
        prog=f"{PROG} cryptosign-key",
        description="Print the public key (hex, for authorized_keys in the relay's config) of an Ed25519 "
        "private key file (hex seed, OpenSSH or PEM); with --new, make the file first (a hex seed, mode 0600).",
    )
    parser.add_argument("key_file", metavar="FILE")
    parser.add_argument("--new", action="store_true", help="create FILE with a fresh key (refuses to overwrite)")
    options = parser.parse_args(argv)
    if options.new:
        seed = os.urandom(cryptosign.KEY_SIZE)
        try:
            descriptor = os.open(options.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            print(f"{PROG} cryptosign-key: {options.key_file}: {error.strerror}", file=sys.stderr)
            return 1
        with os.fdopen(descriptor, "w") as file:
            file.write(seed.hex() + "\n")
    try:
        key = cryptosign.load_private_key(options.key_file)
    except ValueError as error:
        print(f"{PROG} cryptosign-key: {error}", file=sys.stderr)
        return 1
    print(cryptosign.public_key_hex(key))
    return 0


@command("scram-hash", "print the stored form of a WAMP-SCRAM password for the relay's config")
def scram_hash(argv: list[str]) -> int:
    import getpass

    from promisifier.wire import scram

    parser = argparse.ArgumentParser(
        prog=f"{PROG} scram-hash",
        description="Turn a password into the keys [listeners.auth.scram.principals.<authid>] stores "
        "(the relay never sees the password). The password is read from the terminal, or from "
        "standard input when that is not a terminal.",
    )
    parser.add_argument("--kdf", choices=scram.KDFS, default="argon2id13", help="key derivation (default argon2id13)")
    parser.add_argument(
        "--iterations",
        type=int,
        help=f"time cost (default {scram.DEFAULT_ARGON2_ITERATIONS} for argon2id13, "
        f"{scram.DEFAULT_PBKDF2_ITERATIONS} for pbkdf2)",
    )
    parser.add_argument(
        "--memory", type=int, help=f"argon2id13 memory cost in KiB (default {scram.DEFAULT_ARGON2_MEMORY})"
    )
    parser.add_argument("--role", help="add role = ROLE to the output")
    options = parser.parse_args(argv)
    if options.kdf == "pbkdf2" and options.memory is not None:
        parser.error("--memory applies to argon2id13 only")
    for name in ("iterations", "memory"):
        value = getattr(options, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1")
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print(f"{PROG} scram-hash: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print(f"{PROG} scram-hash: empty password", file=sys.stderr)
        return 1
    try:
        credential = scram.hash_password(password, options.kdf, options.iterations, options.memory)
    except ValueError as error:
        print(f"{PROG} scram-hash: {error}", file=sys.stderr)
        return 1
    lines = [f'role = "{options.role}"'] if options.role else []
    for key, value in credential.as_config().items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    print("\n".join(lines))
    return 0


def _run_service(reactor, service, options=None):
    """Start the service under ``task.react`` and keep it running until the reactor stops
    (SIGTERM or SIGINT); the service's stop runs before the reactor shuts down."""
    from twisted.internet.defer import Deferred
    from twisted.logger import Logger

    from promisifier.relay.logging import start_logging

    # --log-format text|json and --log-level (default: text lines, info and above)
    log_format = (options or {}).get("log-format") or "text"
    log_level = (options or {}).get("log-level") or "info"
    start_logging(log_format, log_level, sys.stdout)
    try:
        service.startService()
    except Exception:  # e.g. CannotListenError: the port is taken
        Logger(namespace="promisifier.relay").failure("promisifier relay could not start")
        raise SystemExit(1) from None
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    return Deferred()


# the client commands (call, publish, subscribe, list, register) register themselves
import promisifier.cli  # noqa: E402, F401


def _parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS)
    commands = "\n".join(f"  {name:<{width}}  {summary}" for name, (summary, _) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="RPC and publish/subscribe over WebSocket (WAMP v2), on Twisted.",
        epilog=f"commands:\n{commands}\n\n`{PROG} COMMAND --help` shows the options of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"promisifier {__version__}")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's options and arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    _, function = COMMANDS[args.command]
    return function(args.args)


if __name__ == "__main__":
    sys.exit(main())
