"""Publish and subscribe: a subscriber and a publisher, each its own session, on ``com.example.news``.

With a relay running (``python -m promisifier relay``)::

    python examples/pubsub.py [--url ws://127.0.0.1:8080/ws] [--realm realm1] [--count 3]

runs both in one process: the subscriber subscribes, the publisher publishes ``--count``
events, the subscriber prints each one, and both leave once every event has arrived. To
see them apart, in two terminals (the subscriber first: events are not kept for later)::

    python examples/pubsub.py --role subscriber    # exits after --count events
    python examples/pubsub.py --role publisher     # publishes --count events and exits

Exits 1 when the events do not all arrive within ``--timeout`` seconds.
"""

import argparse
import os

from twisted.internet import defer, task

from promisifier import connect
from promisifier.cli import exit_on_error

TOPIC = "com.example.news"


async def subscriber(reactor, args, ready: defer.Deferred | None = None) -> None:
    session = await connect(args.url, args.realm)
    all_arrived: defer.Deferred = defer.Deferred()
    received = []

    def on_news(headline, number=None):  # positional and keyword values of the event
        received.append(number)
        print(f"subscriber: received {headline!r} (#{number})", flush=True)
        if len(received) == args.count and not all_arrived.called:
            all_arrived.callback(None)

    await session.subscribe(TOPIC, on_news)
    print(f"subscriber: session {session.session_id} subscribed to {TOPIC}", flush=True)
    if ready is not None:
        ready.callback(None)
    try:
        await all_arrived.addTimeout(args.timeout, reactor)
    except defer.TimeoutError:
        raise SystemExit(f"subscriber: {len(received)} of {args.count} events within {args.timeout} s") from None
    finally:
        await session.leave()
    print(f"subscriber: all {args.count} events received; leaving", flush=True)


async def publisher(reactor, args) -> None:
    session = await connect(args.url, args.realm)
    for number in range(1, args.count + 1):
        # acknowledge=True: the Deferred fires once the relay accepted the event
        publication = await session.publish(TOPIC, f"headline {number}", number=number, acknowledge=True)
        print(f"publisher: published #{number} (publication {publication})", flush=True)
    await session.leave()


async def main(reactor, args) -> None:
    if args.role == "subscriber":
        await subscriber(reactor, args)
    elif args.role == "publisher":
        await publisher(reactor, args)
    else:
        # the subscriber first; the publisher once the subscription is in place
        subscribed: defer.Deferred = defer.Deferred()
        listening = defer.ensureDeferred(subscriber(reactor, args, subscribed))

        def failed_before_subscribing(failure):
            if subscribed.called:
                return failure
            subscribed.errback(failure)
            return None

        listening.addErrback(failed_before_subscribing)
        await subscribed
        await publisher(reactor, args)
        await listening


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--role", choices=["both", "subscriber", "publisher"], default="both")
    parser.add_argument("--count", type=int, default=3, help="events to publish / to wait for")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds the subscriber waits for them")
    task.react(exit_on_error(main, "pubsub.py"), (parser.parse_args(),))
