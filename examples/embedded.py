"""The router inside a Twisted program: a web page and the relay on one port, with an in-process procedure.

python examples/embedded.py [PORT]   # http://127.0.0.1:8080/ is the page, ws://127.0.0.1:8080/ws the relay
"""

import sys

from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from promisifier import Router, RouterConfig
from promisifier.relay.endpoints import cannot_listen


async def main(reactor, port="8080"):
    router = Router(RouterConfig(realms=("realm1",)))
    root = Resource()
    root.putChild(b"", Data(b"<h1>Hello from promisifier</h1>", "text/html; charset=utf-8"))
    root.putChild(b"ws", router.resource())  # WAMP at /ws, beside the page
    try:
        listening = reactor.listenTCP(int(port), Site(root), interface="127.0.0.1")
    except CannotListenError as error:  # e.g. the relay runs on 8080: one line, exit code 1
        raise SystemExit(f"embedded.py: {cannot_listen(error)} (give another port: embedded.py 8081)") from None
    session = await router.session("realm1")  # in-process: no socket, no serialization
    await session.register("com.example.add", lambda a, b: a + b)
    print(
        f"page on http://127.0.0.1:{listening.getHost().port}/ and WAMP on ws://127.0.0.1:{listening.getHost().port}/ws",
        flush=True,
    )
    await defer.Deferred()  # serve until Ctrl-C


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
