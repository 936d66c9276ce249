"""Drive the browser page from Python: call the procedure the browser implements, publish to it.

With a relay running and ``examples/browser/index.html`` open in a browser (see README.md
beside this file)::

    python examples/browser/drive.py [--url ws://127.0.0.1:8080/ws] [--realm realm1] [--wait 60]

waits (at most ``--wait`` seconds) until the page has registered ``com.browser.sum``,
calls it with ``--numbers`` and prints the browser's answer, publishes ``--message`` to
``com.browser.news`` (the page shows it), and exits. Exits 1 when the browser's procedure
does not appear in time or the call fails.
"""

import argparse
import os

from twisted.internet import defer, task

from promisifier import ApplicationError, connect
from promisifier.cli import exit_on_error

PROCEDURE = "com.browser.sum"
TOPIC = "com.browser.news"


def number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


async def wait_for_procedure(reactor, session, seconds: float) -> None:
    """Until ``PROCEDURE`` is registered in the realm (registration meta API)."""
    appeared: defer.Deferred = defer.Deferred()

    def created(session_id, details):
        if details.get("uri") == PROCEDURE and not appeared.called:
            appeared.callback(None)

    watching = await session.subscribe("wamp.registration.on_create", created)
    try:
        if await session.call("wamp.registration.lookup", PROCEDURE) is None:
            print(f"waiting for the browser to register {PROCEDURE} ...", flush=True)
            await appeared.addTimeout(seconds, reactor)
    except defer.TimeoutError:
        raise SystemExit(f"no {PROCEDURE} within {seconds} s: is the page open (and 'ready')?") from None
    finally:
        await watching.unsubscribe()


async def main(reactor, args) -> None:
    session = await connect(args.url, args.realm)
    try:
        await wait_for_procedure(reactor, session, args.wait)
        try:
            total = await session.call(PROCEDURE, args.numbers, timeout=args.wait)
        except ApplicationError as error:
            raise SystemExit(f"{PROCEDURE} failed: {error.error} {list(error.args)}") from None
        print(f"the browser says: {PROCEDURE}({args.numbers}) = {total}", flush=True)
        await session.publish(TOPIC, args.message, acknowledge=True)
        print(f"published {args.message!r} to {TOPIC}", flush=True)
    finally:
        await session.leave()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the browser")
    parser.add_argument("--numbers", type=number, nargs="+", default=[1, 2, 3, 4.5], help="what to sum")
    parser.add_argument("--message", default="hello from Python", help="the event published")
    task.react(exit_on_error(main, "drive.py"), (parser.parse_args(),))
