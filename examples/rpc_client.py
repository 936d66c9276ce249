"""An rpc-websockets style client: call, a refused call, login, subscribe to an event, close.

With ``python examples/rpc_server.py`` running::

    python examples/rpc_client.py [--url ws://127.0.0.1:8080/ws] [--realm REALM]

``promisifier.compat.Client`` speaks WAMP to any promisifier relay; the URL path picks
the namespace (``/ws`` and ``/`` are the default one, realm ``realm1``; ``/chat`` is realm
``chat``), ``--realm`` overrides that. Params are a list (positional) or a dict (keyword).
Exits 1 when something does not go as expected.
"""

import argparse

from twisted.internet import defer, task

from promisifier.cli import exit_on_error
from promisifier.compat import Client, RpcError


async def main(reactor, args) -> None:
    client = Client(args.url, autoconnect=False, reconnect=False, realm=args.realm)
    feed = defer.Deferred()
    client.on("feed_updated", lambda payload: feed.called or feed.callback(payload))
    await client.connect()
    print(f"rpc client: open (realm {client.realm})", flush=True)
    try:
        print(f"sum(1, 2, 3) = {await client.call('sum', [1, 2, 3])}", flush=True)
        try:
            await client.call("account")
            raise SystemExit("rpc client: account() answered before login")
        except RpcError as error:  # protected: structured error with a JSON-RPC style code
            print(f"account() before login: error {error.code} ({error.error})", flush=True)

        await client.login({"username": "ann", "password": "secret"})
        print(f"logged in as {client.authid} (role {client.authrole})", flush=True)
        print(f"account() = {await client.call('account')}", flush=True)

        await client.subscribe("feed_updated")
        print(f"post('hello') = {await client.call('post', ['hello'])}", flush=True)
        payload = await feed.addTimeout(args.timeout, reactor)
        print(f"event feed_updated: {payload}", flush=True)
    finally:
        await client.close()
    print("rpc client: closed", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default=None, help="default: the realm of the URL's namespace")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the event")
    task.react(exit_on_error(main, "rpc_client.py"), (parser.parse_args(),))
