"""The websocket-promisifier façade: two peers offer services to each other through the relay.

With a relay running (``python -m promisifier relay``)::

    python examples/peers.py [--url ws://127.0.0.1:8080/ws] [--realm realm1]

Two peers, "alice" and "bob", each with its own WebSocket connection (a WAMP session) to
the relay. ``create_websocket_promisifier(session, peer, name=...)`` gives each side the
websocket-promisifier API: ``add_service(id, fn)`` offers a function to the other side,
``send(id, *params)`` calls the other side's function and returns a Deferred of its
result. On the relay a service is the procedure ``promisifier.peer.<name>.service.<id>``,
so any WAMP client can call it too. Both sides close when done; the script exits.
"""

import argparse
import os

from twisted.internet import task

from promisifier import ApplicationError, connect
from promisifier.cli import exit_on_error
from promisifier.compat import create_websocket_promisifier


async def main(reactor, args) -> None:
    alice = create_websocket_promisifier(await connect(args.url, args.realm), "bob", name="alice")
    bob = create_websocket_promisifier(await connect(args.url, args.realm), "alice", name="bob")

    # alice offers arithmetic; bob offers an "event" service to be told things
    await alice.add_service("add", lambda x, y: x + y)
    await alice.add_service("divide", divide)
    news = []
    await bob.add_service("event", lambda text: news.append(text))
    print(f"alice offers {sorted(alice.services())}; bob offers {sorted(bob.services())}", flush=True)

    total = await bob.send("add", 2, 3)
    print(f"bob: alice's add(2, 3) = {total}", flush=True)
    try:
        await bob.send("divide", 1, 0)
    except ApplicationError as error:  # the service's own error reaches the caller
        print(f"bob: alice's divide(1, 0) failed: {error.error} {error.args[0]}", flush=True)
    await alice.send("event", "hello from alice")  # fires once bob's service returned
    print(f"bob received: {news}", flush=True)
    try:
        await alice.send("no-such-service")
    except ApplicationError as error:
        print(f"alice: bob has no such service: {error.error}", flush=True)

    stats = alice.stats
    print(f"alice: {stats.requests_sent} requests sent, {stats.requests_received} served", flush=True)
    code, reason = await alice.close("alice is done")
    await bob.close("bob is done")
    print(f"closed ({code})", flush=True)


def divide(x, y):
    if y == 0:
        raise ApplicationError("com.example.division_by_zero", "cannot divide by zero")
    return x / y


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    task.react(exit_on_error(main, "peers.py"), (parser.parse_args(),))
