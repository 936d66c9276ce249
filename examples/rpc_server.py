"""An rpc-websockets style server: methods, a protected method, a login check and an event.

::

    python examples/rpc_server.py [--host 127.0.0.1] [--port 8080] [--serve 1]

The server is its own relay (``promisifier.compat.Server`` runs a router and listens):
start it, then run ``python examples/rpc_client.py`` against it. It offers, in the
default namespace ``/`` (realm ``realm1``):

* ``sum(*numbers)`` to everybody;
* ``account()``, protected: only for clients that logged in;
* ``post(text)``, which emits the event ``feed_updated`` to subscribers;
* login: ``{"username": "ann", "password": "secret"}`` is accepted.

It exits once ``--serve`` clients have come and gone (``0``: serve until Ctrl-C). With
``--port 0`` it picks a free port; the line ``listening on ws://...`` tells which.
"""

import argparse

from twisted.internet import defer, task
from twisted.internet.error import CannotListenError

from promisifier.compat import Server
from promisifier.relay.endpoints import cannot_listen


async def main(reactor, args) -> None:
    server = Server(args.host, args.port)
    namespace = server.of("/")
    served = defer.Deferred()
    gone = []

    def posted(text):
        server.emit("feed_updated", {"text": text})
        return "posted"

    server.register("sum", lambda *numbers: sum(numbers))
    server.register("account", lambda: {"user": "ann", "balance": 42}).protected()
    server.register("post", posted)
    server.event("feed_updated")
    server.set_auth(lambda params: params.get("username") == "ann" and params.get("password") == "secret")

    def connected(client):
        print(f"rpc server: client {client.id} connected (role {client.authrole})", flush=True)

    def disconnected(client):
        print(f"rpc server: client {client.id} disconnected", flush=True)
        # a login opens the new session before it closes the old one: the client is gone
        # only when nobody is left
        if not namespace.clients():
            gone.append(client.id)
            if args.serve and len(gone) >= args.serve and not served.called:
                served.callback(None)

    server.on("connection", connected)
    server.on("disconnection", disconnected)
    try:
        await server.when_ready()
    except CannotListenError as error:  # e.g. the relay runs on 8080: one line, exit code 1
        raise SystemExit(f"rpc_server.py: {cannot_listen(error)} (give another port: --port 8081)") from None
    print(f"rpc server: listening on {server.url('/')}", flush=True)
    await served  # with --serve 0, never: Ctrl-C stops the reactor
    await server.close()
    print(f"rpc server: {len(gone)} client(s) served; closed", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--serve", type=int, default=1, help="exit after N clients came and went (0: never)")
    task.react(main, (parser.parse_args(),))
