"""Client: register, subscribe, call and publish with promisifier.Client, which reconnects by itself.

Start the relay (``twistd -n promisifier-relay``), then::

    python examples/client.py [--url ws://127.0.0.1:8080/ws] [--realm realm1] [--rounds N] [--interval S]

Every ``--interval`` seconds it calls its own procedure ``com.example.client.add`` and
publishes a tick to ``com.example.client.ticks``, which it also receives. Stop the relay
and start it again: the client reconnects, registers and subscribes again, and goes on.
Runs until Ctrl-C, or for ``--rounds`` rounds.
"""

import argparse
import os
import sys

from twisted.internet import task
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    PredicateResult,
    globalLogBeginner,
    textFileLogObserver,
)

from promisifier import ApplicationError, Client, NotConnected


def log_client_to_stderr() -> None:
    """Show the client's own log lines (one per reconnect attempt) on stderr."""

    def client_info(event):
        ours = event.get("log_namespace", "").startswith("promisifier.client") and event["log_level"] >= LogLevel.info
        return PredicateResult.yes if ours else PredicateResult.no

    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [client_info])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


async def main(reactor, args):
    client = Client(args.url, args.realm, max_reconnects=0)  # 0: keep trying forever
    client.on(
        "join", lambda session: print(f"joined realm {session.realm} as session {session.session_id}", flush=True)
    )
    client.on("disconnect", lambda code, reason: print(f"connection lost ({code}); reconnecting", flush=True))

    await client.register("com.example.client.add", lambda a, b: a + b)
    await client.subscribe("com.example.client.ticks", lambda n: print(f"tick {n} received", flush=True))
    await client.connect()

    n = 0
    while args.rounds is None or n < args.rounds:
        n += 1
        try:
            total = await client.call("com.example.client.add", n, n, timeout=30, wait_connected=True)
            print(f"com.example.client.add({n}, {n}) = {total}", flush=True)
            await client.publish("com.example.client.ticks", n, exclude_me=False, acknowledge=True)
        except (ApplicationError, NotConnected) as error:
            print(f"round {n} failed: {error}", flush=True)
        await task.deferLater(reactor, args.interval)
    await client.leave()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--rounds", type=int, help="stop after N rounds (default: run until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    log_client_to_stderr()
    task.react(main, (parser.parse_args(),))
