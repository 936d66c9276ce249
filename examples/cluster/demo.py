"""Two relay nodes as one router: a callee and a subscriber on node 2, a caller and a
publisher on node 1 (``run.sh`` starts Redis and the nodes, then this).

    .venv/bin/python examples/cluster/demo.py --node1 ws://127.0.0.1:8080/ws --node2 ws://127.0.0.1:8081/ws
"""

from __future__ import annotations

import argparse

from twisted.internet import defer, task
from twisted.internet.error import ConnectError

import promisifier
from promisifier import ApplicationError

#: seconds to wait for the nodes to start and to see each other's registrations
WAIT = 15.0


@defer.inlineCallbacks
def retry(reactor, attempt, what: str):
    """``attempt()`` until it succeeds (the nodes are starting), at most WAIT seconds."""
    deadline = reactor.seconds() + WAIT
    while True:
        try:
            return (yield attempt())
        except (ApplicationError, promisifier.ClientError, ConnectError) as error:
            if reactor.seconds() > deadline:
                raise
            print(f"waiting for {what}: {error}", flush=True)
        yield task.deferLater(reactor, 0.2, lambda: None)


@defer.inlineCallbacks
def main(reactor, node1: str, node2: str):
    on_node2 = yield retry(reactor, lambda: promisifier.connect(node2, "realm1"), "node 2")
    on_node1 = yield retry(reactor, lambda: promisifier.connect(node1, "realm1"), "node 1")
    news = defer.Deferred()
    yield on_node2.register("com.example.add", lambda a, b: a + b)
    yield on_node2.subscribe("com.example.news", news.callback)
    print("node 2: registered com.example.add, subscribed to com.example.news", flush=True)

    total = yield retry(reactor, lambda: on_node1.call("com.example.add", 2, 3), "the call")
    print(f"node 1: com.example.add(2, 3) = {total} (answered by node 2)", flush=True)
    yield on_node1.publish("com.example.news", "hello from node 1", acknowledge=True)
    print(f"node 2: received {(yield news)!r}", flush=True)
    yield on_node1.leave()
    yield on_node2.leave()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node1", default="ws://127.0.0.1:8080/ws")
    parser.add_argument("--node2", default="ws://127.0.0.1:8081/ws")
    arguments = parser.parse_args()
    task.react(main, (arguments.node1, arguments.node2))
