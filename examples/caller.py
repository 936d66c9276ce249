"""Caller: calls ``com.example.add(2, 3)`` through the relay, prints the result and exits.

With the relay and ``examples/callee.py`` running::

    python examples/caller.py [--url ws://127.0.0.1:8080/ws] [--realm realm1] [--serializer json]

prints ``com.example.add(2, 3) = 5``. Exits 1 if the call fails (no callee, no relay).
"""

import argparse
import os

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet.task import react


async def main(reactor, args) -> None:
    component = Component(
        transports=[{"type": "websocket", "url": args.url, "serializers": [args.serializer], "max_retries": 0}],
        realm=args.realm,
    )
    outcome = {}

    @component.on_join
    async def joined(session, details):
        try:
            outcome["result"] = await session.call("com.example.add", 2, 3)
        except ApplicationError as error:  # e.g. wamp.error.no_such_procedure: no callee yet
            outcome["error"] = f"{error.error} {list(error.args)}"
        finally:
            session.leave()

    failures = []
    component.on_connectfailure(lambda component, error: failures.append(error))
    try:
        await component.start(reactor)  # fires once the session has left and the connection closed
    except RuntimeError as error:  # autobahn: "Exhausted all transport connect attempts"
        why = " ".join(str(failures[-1] if failures else error).split())
        raise SystemExit(f"caller.py: error: cannot connect to {args.url}: {why}") from None
    if "error" in outcome:
        raise SystemExit(f"caller: com.example.add failed: {outcome['error']}")
    if "result" not in outcome:
        raise SystemExit("caller: never joined the relay")
    print(f"com.example.add(2, 3) = {outcome['result']}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--serializer", choices=["json", "msgpack"], default="json")
    react(main, (parser.parse_args(),))
