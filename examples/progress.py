"""Progressive call results: a callee sends partial results before its final one, and the caller
prints each as it arrives.

With a relay running (``python -m promisifier relay``)::

    python examples/progress.py [--url ws://127.0.0.1:8080/ws] [--realm realm1] [--count 5] [--delay 0.2]

A callee session registers ``com.example.countdown(n)``; a caller session calls it with
``on_progress=...``. Because the caller asked for progress, the callee's function gets a
``progress`` keyword argument: each ``progress(value)`` reaches the caller at once (a
YIELD with ``progress: true``), then the return value is the call's result::

    progress: 5
    ...
    progress: 1
    result: liftoff

Any WAMP client with progressive call results (autobahn-python, autobahn-js) can be the
callee or the caller. Exits 1 when the call fails.
"""

import argparse
import os

from twisted.internet import task

from promisifier import ApplicationError, connect
from promisifier.cli import exit_on_error

PROCEDURE = "com.example.countdown"


async def main(reactor, args) -> None:
    callee = await connect(args.url, args.realm)
    caller = await connect(args.url, args.realm)

    async def countdown(n, progress=None):
        # progress is None when the caller did not ask for progressive results
        for remaining in range(n, 0, -1):
            if progress is not None:
                progress(remaining)
            await task.deferLater(reactor, args.delay)  # some work between two partial results
        return "liftoff"

    await callee.register(PROCEDURE, countdown)
    print(f"callee: registered {PROCEDURE}", flush=True)

    def show(value):  # called for each progressive result, before the call's Deferred fires
        print(f"progress: {value}", flush=True)

    try:
        result = await caller.call(PROCEDURE, args.count, on_progress=show, timeout=args.timeout)
    except ApplicationError as error:
        raise SystemExit(f"caller: {PROCEDURE} failed: {error.error} {list(error.args)}") from None
    finally:
        await caller.leave()
        await callee.leave()
    print(f"result: {result}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--count", type=int, default=5, help="partial results before the final one")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds of 'work' between partial results")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds the call may take")
    task.react(exit_on_error(main, "progress.py"), (parser.parse_args(),))
