"""XConn's Python router for comparisons: ``PYTHON benchmarks/xconn_router.py --port P``.

Runs under the interpreter of a virtualenv that has ``xconn`` installed (not a dependency
of promisifier; see ``python -m benchmarks xconn --help``): XConn's ``Router`` with one
realm, ``realm1``, anonymous, served by its ``Server`` (aiohttp) on
``ws://127.0.0.1:P/ws`` (json, cbor and msgpack). Imports nothing of promisifier.
"""

from __future__ import annotations

import argparse
import asyncio

from xconn import Router, Server


async def serve(host: str, port: int) -> None:
    router = Router()
    router.add_realm("realm1")
    await Server(router).start(host, port)
    await asyncio.Event().wait()  # until the process is stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
