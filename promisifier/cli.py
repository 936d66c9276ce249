"""Client commands of ``python -m promisifier``: call, publish, subscribe, list, register.

::

    python -m promisifier call      PROCEDURE [ARG ...] [-k KEY=VALUE ...]
    python -m promisifier call      PROCEDURE --stdin-lines < input
    python -m promisifier publish   TOPIC [ARG ...] [-k KEY=VALUE ...] [--ack]
    python -m promisifier subscribe TOPIC [--match prefix|wildcard] [--count N] [--once]
    python -m promisifier list
    python -m promisifier register  PROCEDURE [--echo | --reply JSON] [--count N] [--once]

Every command connects to ``--url`` (default ``$PROMISIFIER_URL``, else
``ws://127.0.0.1:8080/ws``) and joins ``--realm`` (``$PROMISIFIER_REALM``, else ``realm1``);
the two may also come first, as ``URL REALM`` (``call ws://127.0.0.1:8080/ws realm1
com.example.add 2 3``). Every command takes ``--serializer json|msgpack|cbor`` (default:
msgpack, else json), ``--timeout SECONDS`` (connecting, and each call; default 10; 0:
calls without a bound, connecting within 10 s), ``--authid`` with ``--ticket`` (ticket)
or ``--secret`` (WAMP-CRA), and ``--debug`` (log to stderr).

**Values.** Each ARG (and each ``-k`` VALUE) is read as JSON (``2``, ``"2"``, ``[1, 2]``,
``{"a": null}``, ``true``); text that is not JSON is taken as a string (``hello``).
Output is JSON: ``call`` prints its result on one line (a single value as itself, no
result as ``null``, several values or keyword values as ``{"args": [...], "kwargs":
{...}}``); ``subscribe`` prints one line ``{"args": [...], "kwargs": {...}}`` per event;
``register`` prints one such line per call it answers; ``list`` prints an object with the
realm's ``registrations`` and ``subscriptions`` (meta API). Bytes are printed, and read,
as ``{"$base64": "<base64 text>"}``.

**Errors** are one line on stderr, ``promisifier COMMAND: error: ...``, and exit code 1
(cannot connect, the router refused the session, no such procedure, not authorized, the
callee's error, timeout); bad command lines exit 2. ``subscribe`` and ``register`` run
until interrupted (Ctrl-C or SIGTERM: they leave the session and exit 0) or until
``--count`` events / calls, and say on stderr once they are ready. When the relay goes
away they say so, join again once it is back and subscribe / register again (``--once``:
exit 1 instead).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from promisifier.commands import COMMANDS, PROG
from promisifier.commands import command as _command

BYTES_KEY = "$base64"


# -- values -----------------------------------------------------------------------------


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BYTES_KEY), str):
            return base64.b64decode(value[BYTES_KEY])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def parse_value(text: str) -> Any:
    """A command-line value: JSON, or the text itself when it is not JSON."""
    try:
        return _from_json(json.loads(text))
    except ValueError:
        return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def to_json(value: Any) -> str:
    """One line of JSON for a value received (bytes as ``{"$base64": ...}``)."""
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(", ", ": "))


def _payload_json(args: Any, kwargs: Any) -> str:
    return to_json({"args": list(args), "kwargs": dict(kwargs)})


# -- arguments ------------------------------------------------------------------------


#: where the commands connect without --url / a URL argument, and the realm they join
DEFAULT_URL = "ws://127.0.0.1:8080/ws"
DEFAULT_REALM = "realm1"
URL_SCHEMES = ("ws://", "wss://", "rs://", "rss://")


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    from promisifier import __version__

    parser = argparse.ArgumentParser(
        prog=f"{PROG} {name}",
        description=description,
        epilog=(
            "The relay's URL and the realm may also be given first, before the other arguments"
            f" ({PROG} {name} ws://127.0.0.1:8080/ws realm1 ...)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"promisifier {__version__}")
    parser.add_argument(
        "--url",
        default=os.environ.get("PROMISIFIER_URL") or DEFAULT_URL,
        help=f"the relay's URL (ws://, wss://, rs://, rss://); default $PROMISIFIER_URL, else {DEFAULT_URL}",
    )
    parser.add_argument(
        "--realm",
        default=os.environ.get("PROMISIFIER_REALM") or DEFAULT_REALM,
        help=f"the realm to join; default $PROMISIFIER_REALM, else {DEFAULT_REALM}",
    )
    parser.add_argument(
        "--serializer", choices=("json", "msgpack", "cbor"), help="only this serializer (default: msgpack, else json)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="bound on connecting and on each call (default 10; 0: calls without a bound)",
    )
    parser.add_argument("--authid", help="the identity to authenticate as (with --ticket, --secret, ...)")
    parser.add_argument("--ticket", help="a ticket (password, or a JWT) for ticket authentication")
    parser.add_argument(
        "--private-key",
        metavar="KEY",
        help="WAMP-Cryptosign: the Ed25519 private key, as 64 hex digits or a key file (OpenSSH, PEM, hex)",
    )
    parser.add_argument("--secret", help="WAMP-CRA: the secret (challenge-response authentication)")
    parser.add_argument("--password", help="WAMP-SCRAM: the password (both the spec's and autobahn's dialect)")
    parser.add_argument(
        "--authmethods",
        metavar="M1,M2",
        help="the methods to offer, in order (default: what the credentials allow), e.g. scram for Crossbar",
    )
    parser.add_argument(
        "--ca-file", metavar="PEM", help="wss://, rss://: trust only the CA certificate(s) in this file"
    )
    parser.add_argument("--cert", metavar="PEM", help="wss://, rss://: present this client certificate")
    parser.add_argument("--key", metavar="PEM", help="the client certificate's private key (default: in --cert)")
    parser.add_argument(
        "--server-name", metavar="NAME", help="check the router's certificate against NAME instead of the URL's host"
    )
    parser.add_argument("--debug", action="store_true", help="log what happens to stderr")
    return parser


def _take_location(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """Move a leading ``URL REALM`` pair (the first positional arguments, when the first
    one is a relay URL) to ``--url URL --realm REALM``."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--" or not token.startswith("-") or token == "-":
            break
        action = parser._option_string_actions.get(token.split("=", 1)[0])
        takes_value = action is not None and action.nargs != 0 and "=" not in token
        index += 2 if takes_value else 1
    if index < len(argv) and argv[index].lower().startswith(URL_SCHEMES):
        url, realm = argv[index], argv[index + 1 : index + 2]
        if not realm:
            parser.error(f"a realm must follow the URL {url}")
        return argv[:index] + argv[index + 2 :], ["--url", url, "--realm", realm[0]]
    return argv, []


def _kwargs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        "--kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument (VALUE as JSON); repeatable",
    )


def _keywords(pairs: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"-k needs KEY=VALUE, got {pair!r}")
        kwargs[key] = parse_value(value)
    return kwargs


# -- running ----------------------------------------------------------------------------


class CommandError(Exception):
    """A failure to report as one line on stderr (exit code 1)."""


def describe(error: BaseException, url: str = "") -> str:
    """One line saying what went wrong."""
    from promisifier.client.errors import (
        ApplicationError,
        ConnectFailed,
        ConnectionClosed,
        ConnectionLost,
        ConnectTimeout,
        InvalidURL,
        SessionAborted,
    )

    if isinstance(error, (ApplicationError, ConnectFailed, ConnectTimeout, InvalidURL)):
        return str(error)
    if isinstance(error, SessionAborted):
        return f"the router refused the session: {error}"
    if isinstance(error, ConnectionClosed):
        return f"cannot connect to {url}: {error}"
    if isinstance(error, ConnectionLost):
        return f"connection lost: {error}"
    return " ".join(str(error).split()) or type(error).__name__


def exit_on_error(main: Callable[..., Any], prog: str) -> Callable[..., Any]:
    """Wrap an async ``main(reactor, ...)`` for ``task.react``: a client error (cannot
    connect, refused, connection lost) or an application error ends the program with
    one line on stderr, ``PROG: error: ...``, and exit code 1, instead of a traceback::

        task.react(exit_on_error(main, "myprogram"), (args,))
    """
    from promisifier.client.errors import ApplicationError, ClientError

    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await main(*args, **kwargs)
        except (ClientError, ApplicationError) as error:
            raise SystemExit(f"{prog}: error: {describe(error)}") from None

    return run


def _connect(reactor: Any, options: argparse.Namespace) -> Any:
    """A session joined as the options say (URL, realm, serializer, credentials, TLS)."""
    from promisifier.client import connect

    return connect(
        options.url,
        options.realm,
        serializers=(options.serializer,) if options.serializer else ("msgpack", "json"),
        authid=options.authid,
        credentials=_credentials(options),
        authmethods=options.authmethods.split(",") if options.authmethods else None,
        tls=_tls(options),
        timeout=options.timeout or DEFAULT_CONNECT_TIMEOUT,
        reactor=reactor,
    )


#: seconds to connect with --timeout 0
DEFAULT_CONNECT_TIMEOUT = 10.0


class SessionEnded(CommandError):
    """The session of ``subscribe`` or ``register`` ended (the relay stopped, or closed it)."""


def _hint(error: BaseException, options: argparse.Namespace) -> str:
    """What to pass on the command line, for errors a new user meets."""
    from promisifier.client.errors import SessionAborted

    if not isinstance(error, SessionAborted):
        return ""
    if error.reason == "wamp.error.no_auth_method":
        return " (this relay does not let anonymous clients in: pass --authid NAME with --ticket TICKET or --secret SECRET)"
    if options.ticket is not None and not options.authid:
        return " (--ticket without --authid: pass --authid NAME, the identity the ticket belongs to)"
    if error.reason in ("wamp.error.authentication_failed", "wamp.error.not_authorized"):
        return " (check --authid and its --ticket or --secret)"
    return ""


#: seconds between reconnect attempts of subscribe and register: first, and at most
RECONNECT_DELAY = (1.0, 10.0)


def _run(name: str, options: argparse.Namespace, body: Callable[..., Any], reconnect: bool = False) -> int:
    """Run ``body(reactor, session, options)`` on a joined session under task.react.

    With ``reconnect``, a session that ends (:class:`SessionEnded`) is joined again and
    ``body`` run again on the new one, until Ctrl-C; the first connection must succeed.
    """
    from twisted.internet import defer, task
    from twisted.logger import globalLogBeginner, textFileLogObserver

    observers = [textFileLogObserver(sys.stderr)] if options.debug else [lambda event: None]
    globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False, discardBuffer=not options.debug)

    def report(error: BaseException) -> int:
        line = f"promisifier {name}: error: {describe(error, options.url)}{_hint(error, options)}"
        print(line, file=sys.stderr, flush=True)
        return 1

    def say(text: str) -> None:
        print(f"promisifier {name}: {text}", file=sys.stderr, flush=True)

    async def main(reactor: Any) -> None:
        # at Ctrl-C / SIGTERM the reactor waits for this: the session leaves first
        finished: defer.Deferred[None] = defer.Deferred()
        reactor.addSystemEventTrigger("before", "shutdown", lambda: finished)
        try:
            await session_main(reactor)
        finally:
            finished.callback(None)

    stopping: list[bool] = []  # not empty once the program stops
    pausing: list[Any] = [None]  # the pause between two reconnect attempts

    def stop_waiting() -> None:
        stopping.append(True)
        if pausing[0] is not None and not pausing[0].called:
            pausing[0].cancel()

    async def pause(reactor: Any, seconds: float) -> bool:
        """Wait ``seconds``; False when the program stops meanwhile."""
        if stopping:
            return False
        pausing[0] = task.deferLater(reactor, seconds, lambda: None)
        try:
            await pausing[0]
        except defer.CancelledError:
            return False
        return not stopping

    async def session_main(reactor: Any) -> None:
        reactor.addSystemEventTrigger("before", "shutdown", stop_waiting)
        delay, joined_once = RECONNECT_DELAY[0], False
        while True:
            try:
                session = await _connect(reactor, options)
            except Exception as error:
                if not (reconnect and joined_once):
                    raise SystemExit(report(error)) from error
                say(f"{describe(error, options.url)}; retrying in {delay:g} s")
                if not await pause(reactor, delay):
                    return
                delay = min(2 * delay, RECONNECT_DELAY[1])
                continue
            joined_once, delay = True, RECONNECT_DELAY[0]
            code = 0
            try:
                await defer.ensureDeferred(body(reactor, session, options))
            except SessionEnded as error:
                if reconnect and not stopping:
                    say(f"{error}; reconnecting (--once: exit instead)")
                    continue
                code = report(error)
            except Exception as error:
                code = report(error)
            if session.is_joined:
                try:
                    await session.leave().addTimeout(2.0, reactor)
                except Exception:
                    session.connection.drop()
            if code:
                raise SystemExit(code)
            return

    task.react(main)
    return 0  # not reached: react exits


def _given(options: argparse.Namespace, names: dict[str, str]) -> dict[str, Any] | None:
    """``{key: value}`` of the options given (``names``: key -> option attribute), or None."""
    found = {key: getattr(options, attribute) for key, attribute in names.items()}
    return {key: value for key, value in found.items() if value is not None} or None


def _credentials(options: argparse.Namespace) -> dict[str, Any] | None:
    """What the authentication options give to connect()."""
    return _given(
        options, {"ticket": "ticket", "secret": "secret", "private_key": "private_key", "password": "password"}
    )


def _tls(options: argparse.Namespace) -> dict[str, Any] | None:
    """What the TLS options give to connect()."""
    return _given(options, {"ca_file": "ca_file", "cert_file": "cert", "key_file": "key", "server_name": "server_name"})


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    argv, location = _take_location(parser, argv)
    options = parser.parse_args(location + argv)
    if options.timeout < 0:
        parser.error("--timeout must be >= 0 (0: calls without a bound)")
    if options.secret is not None and not options.authid:
        parser.error("--secret needs --authid NAME: the identity the relay knows the secret for")
    return options


def _parse_payload(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, list, dict]:
    """Add the ARG and keyword options, parse ``argv``: (options, args, kwargs) as JSON values."""
    parser.add_argument(
        "args", nargs="*", metavar="ARG", help="a positional argument as JSON (text that is not JSON: a string)"
    )
    _kwargs_option(parser)
    options = _parse(parser, argv)
    try:
        kwargs = _keywords(options.kwarg)
    except ValueError as error:
        parser.error(str(error))
    return options, [parse_value(a) for a in options.args], kwargs


# -- commands -----------------------------------------------------------------------------


@_command("call", "call a procedure and print its result as JSON")
def call(argv: list[str]) -> int:
    parser = _parser("call", "Call PROCEDURE with the ARGs (JSON values) and print the result as JSON.")
    parser.add_argument("procedure", metavar="PROCEDURE")
    parser.add_argument(
        "--stdin-lines",
        action="store_true",
        help="stream the input: each line of stdin (a value, as an ARG) goes to the callee as soon as it is read, "
        "as one chunk of a progressive call invocation; no call timeout",
    )
    options, args, kwargs = _parse_payload(parser, argv)
    if options.stdin_lines and (args or kwargs):
        parser.error("--stdin-lines takes no ARG or -k: the input is stdin")

    async def body(reactor: Any, session: Any, options: argparse.Namespace) -> None:
        from promisifier.client import CallResult

        if options.stdin_lines:
            result = await session.call_stream(options.procedure, _stdin_lines())
        else:
            result = await session.call(options.procedure, *args, timeout=options.timeout or None, **kwargs)
        if isinstance(result, CallResult):
            print(_payload_json(result.args, result.kwargs), flush=True)
        else:
            print(to_json(result), flush=True)

    return _run("call", options, body)


async def _stdin_lines() -> Any:
    """Each line of stdin as a value (see Values), as it is read (a thread blocks on stdin)."""
    from twisted.internet.threads import deferToThread

    while True:
        line = await deferToThread(sys.stdin.readline)
        if not line:
            return
        yield parse_value(line.rstrip("\r\n"))


@_command("publish", "publish an event (acknowledged, so refusals are reported)")
def publish(argv: list[str]) -> int:
    parser = _parser(
        "publish", "Publish an event to TOPIC with the ARGs (JSON values); waits for the router's acknowledgement."
    )
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument("--ack", action="store_true", help="print the publication id the router acknowledged")
    options, args, kwargs = _parse_payload(parser, argv)

    async def body(reactor: Any, session: Any, options: argparse.Namespace) -> None:
        published = session.publish(options.topic, *args, acknowledge=True, **kwargs)
        if options.timeout:
            published.addTimeout(options.timeout, reactor)
        publication = await published
        if options.ack:
            print(to_json(publication), flush=True)

    return _run("publish", options, body)


def _until(reactor: Any, count: int | None) -> tuple[Any, Callable[[], None]]:
    """A Deferred that fires after ``count`` ticks (never without a count) or at shutdown."""
    from twisted.internet import defer

    done: defer.Deferred[None] = defer.Deferred()
    seen = [0]

    def tick() -> None:
        seen[0] += 1
        if count is not None and seen[0] >= count and not done.called:
            # after the current message is answered
            reactor.callLater(0, lambda: done.called or done.callback(None))

    def shutdown() -> Any:
        if not done.called:
            done.callback(None)

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    return done, tick


def _once_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="exit (code 1) when the session ends, instead of joining again when the relay is back",
    )


@_command("subscribe", "print one JSON line per event on a topic")
def subscribe(argv: list[str]) -> int:
    parser = _parser("subscribe", "Print one JSON line per event on TOPIC, until interrupted.")
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument("--match", choices=("exact", "prefix", "wildcard"), default="exact")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N events")
    _once_option(parser)
    options = _parse(parser, argv)
    until: list[Any] = []  # (done, tick), kept across reconnects

    async def body(reactor: Any, session: Any, options: argparse.Namespace) -> None:
        until[:] = until or [_until(reactor, options.count)]
        done, tick = until[0]

        def on_event(*args: Any, **kwargs: Any) -> None:
            print(_payload_json(args, kwargs), flush=True)
            tick()

        await session.subscribe(options.topic, on_event, match=options.match)
        print(f"subscribed to {options.topic} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        await _wait_or_closed(session, done)

    return _run("subscribe", options, body, reconnect=not options.once)


async def _wait_or_closed(session: Any, done: Any) -> None:
    """Until ``done`` fires or the session ends (which is an error)."""
    from twisted.internet import defer

    ended: defer.Deferred[Any] = defer.Deferred()
    session.on("leave", lambda s, reason: ended.called or ended.callback(reason))
    result, index = await defer.DeferredList([done, ended], fireOnOneCallback=True, consumeErrors=True)
    if index == 1 and not done.called:
        raise SessionEnded(f"the session ended ({result})")


@_command("list", "list the realm's registrations and subscriptions (meta API)")
def list_(argv: list[str]) -> int:
    parser = _parser(
        "list", "Print the realm's registrations and subscriptions as JSON (registration and subscription meta API)."
    )
    options = _parse(parser, argv)

    async def body(reactor: Any, session: Any, options: argparse.Namespace) -> None:
        from twisted.internet import defer

        from promisifier.client.errors import ApplicationError

        async def describe_all(kind: str, count_procedure: str) -> list[dict[str, Any]]:
            timeout = options.timeout or None
            by_policy = await session.call(f"wamp.{kind}.list", timeout=timeout)
            ids = [i for policy in ("exact", "prefix", "wildcard") for i in (by_policy or {}).get(policy, [])]
            found = []
            for item_id in ids:
                try:
                    details, count = await defer.gatherResults(
                        [
                            session.call(f"wamp.{kind}.get", item_id, timeout=timeout),
                            session.call(count_procedure, item_id, timeout=timeout),
                        ],
                        consumeErrors=True,
                    )
                except defer.FirstError as error:
                    if isinstance(error.subFailure.value, ApplicationError):
                        continue  # gone meanwhile
                    raise error.subFailure.value from None
                found.append({**details, "count": count})
            return sorted(found, key=lambda d: (d.get("uri", ""), d.get("match", "")))

        registrations = await describe_all("registration", "wamp.registration.count_callees")
        subscriptions = await describe_all("subscription", "wamp.subscription.count_subscribers")
        for item in registrations:
            item["callees"] = item.pop("count")
        for item in subscriptions:
            item["subscribers"] = item.pop("count")
        print(
            json.dumps(_jsonable({"registrations": registrations, "subscriptions": subscriptions}), indent=2),
            flush=True,
        )

    return _run("list", options, body)


@_command("register", "register a procedure that echoes its arguments (for trying things out)")
def register(argv: list[str]) -> int:
    parser = _parser(
        "register",
        "Register PROCEDURE and answer every call, printing one JSON line per call, until interrupted.",
    )
    parser.add_argument("procedure", metavar="PROCEDURE")
    answer = parser.add_mutually_exclusive_group()
    answer.add_argument("--echo", action="store_true", help="answer with the call's arguments (the default)")
    answer.add_argument("--reply", metavar="JSON", help="answer every call with this value")
    parser.add_argument("--match", choices=("exact", "prefix", "wildcard"), default="exact")
    parser.add_argument("--count", type=int, metavar="N", help="stop after answering N calls")
    _once_option(parser)
    options = _parse(parser, argv)
    reply = parse_value(options.reply) if options.reply is not None else None
    until: list[Any] = []  # (done, tick), kept across reconnects

    async def body(reactor: Any, session: Any, options: argparse.Namespace) -> None:
        from promisifier.client import CallResult

        until[:] = until or [_until(reactor, options.count)]
        done, tick = until[0]

        def answer(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("progress", None)
            print(_payload_json(args, kwargs), flush=True)
            tick()
            if options.reply is not None:
                return reply
            if len(args) == 1 and not kwargs:
                return args[0]
            return CallResult(list(args), kwargs)

        await session.register(options.procedure, answer, match=options.match)
        print(f"registered {options.procedure} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        await _wait_or_closed(session, done)

    return _run("register", options, body, reconnect=not options.once)


__all__ = ["COMMANDS", "describe", "exit_on_error", "parse_value", "to_json"]
