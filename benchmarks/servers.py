"""Servers the benchmarks start as processes: ``python -m benchmarks.servers KIND ...``.

* ``relay``     a :class:`promisifier.router.RouterCore` listening for WebSocket (``--ws``) and
  RawSocket (``--rs``) clients, realm ``realm1``. ``--embedded`` uses
  :class:`promisifier.embed.Router` instead and registers ``com.bench.echo`` from an
  in-process session (a procedure inside the relay; it returns its first argument).
  Without ``--embedded`` it is the router without the relay service around it
  (``--relay script`` in the scenarios; the default is ``python -m promisifier relay``).
* ``echo``      the ceiling: autobahn's plain ``WebSocketServerProtocol`` that sends every
  message back as it came (``--ws``), and a RawSocket server on
  :mod:`promisifier.transport.rawsocket`'s framing that sends every frame back without
  decoding it (``--rs``). No WAMP, no serializer: only the transport's work per message.

Listening addresses are Twisted endpoint strings (``tcp:8080:interface=127.0.0.1``). The
process prints ``listening`` on stdout once every listener is up, and runs until SIGTERM
or SIGINT. With ``--profile FILE`` it runs under cProfile and writes the stats to FILE on
exit.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import serverFromString

from promisifier.listen import ListenerOptions, listen, rawsocket_factory
from promisifier.router import RouterConfig
from promisifier.transport.rawsocket import RawSocketServerFactory, RawSocketServerProtocol
from promisifier.transport.rawsocket_framing import exponent_length, handshake_octets, length_exponent
from promisifier.transport.websocket import DEFAULT_MAX_MESSAGE_SIZE


class EchoWebSocket(WebSocketServerProtocol):
    """Sends every message back, text as text and binary as binary."""

    def onConnect(self, request):  # noqa: N802 - autobahn API
        # accept whatever WAMP subprotocol the client offers, as the relay would
        return request.protocols[0] if request.protocols else None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802 - autobahn API
        self.sendMessage(payload, isBinary)


class EchoRawSocket(RawSocketServerProtocol):
    """RawSocket framing only: every frame goes back as it came, undecoded."""

    def _on_handshake(self, octets: bytes) -> None:
        serializer_id = octets[1] & 0x0F
        exponent = length_exponent(self.factory.max_message_size)
        self.transport.write(handshake_octets(serializer_id, exponent))
        serializer = self.factory.serializers[serializer_id]
        self._opened(serializer, exponent_length(octets[1] >> 4), exponent_length(exponent))

    def _frame_received(self, payload: bytes) -> None:
        self.transport.write(len(payload).to_bytes(4, "big") + payload)


@defer.inlineCallbacks
def start_relay(args: argparse.Namespace):
    config = RouterConfig(realms=("realm1",))
    if args.embedded:
        from promisifier.embed import Router

        router = Router(config)
        session = yield router.session("realm1")

        def echo(*args_, **kwargs):
            return args_[0] if args_ else None

        yield session.register("com.bench.echo", echo)
    else:
        from promisifier.router import RouterCore

        router = RouterCore(config)
    if args.ws:
        yield listen(router, ListenerOptions.from_config(config, endpoint=args.ws, path="/ws"))
    if args.rs:
        yield serverFromString(reactor, args.rs).listen(rawsocket_factory(router, ListenerOptions.from_config(config)))
    return router


@defer.inlineCallbacks
def start_echo(args: argparse.Namespace):
    if args.ws:
        factory = WebSocketServerFactory()
        factory.protocol = EchoWebSocket
        # the relay's own protocol options (promisifier.transport.websocket), keep-alive off
        factory.setProtocolOptions(
            maxMessagePayloadSize=DEFAULT_MAX_MESSAGE_SIZE,
            maxFramePayloadSize=DEFAULT_MAX_MESSAGE_SIZE,
            openHandshakeTimeout=10.0,
            failByDrop=False,
        )
        yield serverFromString(reactor, args.ws).listen(factory)
    if args.rs:
        factory = RawSocketServerFactory(lambda connection: None)
        factory.protocol = EchoRawSocket
        yield serverFromString(reactor, args.rs).listen(factory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("relay", "echo"))
    parser.add_argument("--ws", help="WebSocket listening endpoint (path /ws for the relay)")
    parser.add_argument("--rs", help="RawSocket listening endpoint")
    parser.add_argument("--embedded", action="store_true", help="relay: register com.bench.echo in-process")
    parser.add_argument("--profile", help="run under cProfile and write the stats to this file on exit")
    args = parser.parse_args(argv)
    if not (args.ws or args.rs):
        parser.error("give --ws and/or --rs")

    def started(_: object) -> None:
        print("listening", flush=True)

    def failed(failure) -> None:
        print(f"failed: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()

    start = start_relay if args.kind == "relay" else start_echo
    reactor.callWhenRunning(lambda: start(args).addCallbacks(started, failed))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: reactor.callFromThread(reactor.stop))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            reactor.run(installSignalHandlers=False)
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
    else:
        reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
