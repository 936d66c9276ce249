"""Callee: registers ``com.example.add`` on the relay and answers calls until stopped (Ctrl-C).

Start the relay (``twistd -n promisifier-relay``), then::

    python examples/callee.py [--url ws://127.0.0.1:8080/ws] [--realm realm1] [--serializer json]

It uses autobahn-python's WAMP client; any WAMP v2 client works the same way.
"""

import argparse
import os
import sys

from autobahn.twisted.component import Component
from twisted.internet import task


def add(a, b):
    return a + b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--serializer", choices=["json", "msgpack"], default="json")
    args = parser.parse_args()

    component = Component(
        transports=[{"type": "websocket", "url": args.url, "serializers": [args.serializer]}],
        realm=args.realm,
    )

    @component.on_join
    async def joined(session, details):
        await session.register(add, "com.example.add")
        print(f"callee: session {details.session} registered com.example.add", flush=True)

    @component.on_connectfailure
    def cannot_connect(component, error):
        why = " ".join(str(error).split())
        print(f"callee.py: cannot connect to {args.url}: {why}; retrying", file=sys.stderr, flush=True)

    @component.on_leave
    def left(session, details):
        print(f"callee: session left: {details.reason}", flush=True)

    # reconnects if the relay goes away, until Ctrl-C
    task.react(lambda reactor: component.start(reactor))


if __name__ == "__main__":
    main()
