"""Hot path: µs of CPU per relayed call through the real transport protocols, one process.

No sockets, kernel or scheduler are involved.

A :class:`promisifier.router.RouterCore` gets two connections built by the factories of
:mod:`promisifier.listen` (``websocket_factory`` for ``ws``: autobahn's WebSocket server
protocol, HTTP upgrade included; ``rawsocket_factory`` for ``rs``) on in-memory transports
that count and drop what is written. A callee session registers ``com.bench.echo`` and a caller
session joins, each by feeding client bytes to ``dataReceived``. Then the measured loop
feeds, per batch of ``--batch`` calls, the caller's CALL frames in one ``dataReceived`` and
the callee's YIELD frames in another (the bytes are built before timing: masked client
frames for WebSocket), so each call crosses the whole relay path: frame parsing (and
unmasking), decoding, the wire check, routing, encoding and framing of INVOCATION and
RESULT, up to ``transport.write``. The socket system calls and the reactor's loop are not
included: the network scenarios (``rpc``) measure those too. Time is the thread's CPU
time (``time.thread_time``), so other work on the machine does not count.

For the ceiling the same is done with the echo servers of :mod:`benchmarks.servers`
(autobahn's plain ``WebSocketServerProtocol`` and the RawSocket framing, each sending
every message back): µs per echo, one message in and one out; a relayed call is two in
and two out.

Figures per transport and serializer (the best of ``--repeat`` runs of ``--calls``; the
JSON has every run and the median):
``hotpath.T.S.call_us`` and ``.calls_per_core`` (1e6 / call_us), ``hotpath.T.S.echo_us``,
and ``hotpath.T.S.share_of_ceiling``: 2 x echo_us / call_us, how close the relay is to what
its transport alone costs.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock

from benchmarks import harness
from benchmarks.servers import EchoRawSocket, EchoWebSocket
from promisifier.listen import ListenerOptions, rawsocket_factory, websocket_factory
from promisifier.router import RouterConfig, RouterCore
from promisifier.transport.rawsocket import RawSocketServerFactory
from promisifier.transport.rawsocket_framing import SERIALIZER_IDS, handshake_octets
from promisifier.wire import SERIALIZERS

HELLO, WELCOME, REGISTER, REGISTERED, CALL, RESULT, INVOCATION, YIELD = 1, 2, 64, 65, 48, 50, 68, 70
MASK = b"\x37\xfa\x21\x3d"
_ports = iter(range(40000, 60000))


class NullTransport:
    """Counts and drops what is written (keeps it while ``keep`` is on)."""

    disconnecting = False

    def __init__(self) -> None:
        self.writes = 0
        self.written = 0
        self.keep = True
        self.kept: list[bytes] = []
        self.port = next(_ports)

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.written += len(data)
        if self.keep:
            self.kept.append(bytes(data))

    def writeSequence(self, data: Any) -> None:  # noqa: N802 - Twisted API
        self.write(b"".join(data))

    def getPeer(self) -> IPv4Address:  # noqa: N802 - Twisted API
        return IPv4Address("TCP", "127.0.0.1", self.port)

    def getHost(self) -> IPv4Address:  # noqa: N802 - Twisted API
        return IPv4Address("TCP", "127.0.0.1", 8080)

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802 - Twisted API
        pass

    def loseConnection(self) -> None:  # noqa: N802 - Twisted API
        self.disconnecting = True

    def abortConnection(self) -> None:  # noqa: N802 - Twisted API
        self.disconnecting = True

    def registerProducer(self, producer: Any, streaming: bool) -> None:  # noqa: N802 - Twisted API
        pass

    def unregisterProducer(self) -> None:  # noqa: N802 - Twisted API
        pass

    def take(self) -> bytes:
        data = b"".join(self.kept)
        self.kept = []
        return data


# -- client-side framing ---------------------------------------------------------------------


def ws_client_frame(payload: bytes, binary: bool) -> bytes:
    """One masked client frame (FIN, text or binary)."""
    n = len(payload)
    first = 0x82 if binary else 0x81
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    key = (MASK * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little") if n else b""
    return header + MASK + masked


def ws_server_frames(data: bytes) -> list[bytes]:
    """The payloads of unmasked server frames in ``data`` (after the HTTP response)."""
    if data.startswith(b"HTTP/1.1"):
        data = data.split(b"\r\n\r\n", 1)[1]
    payloads = []
    i = 0
    while i < len(data):
        n = data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = int.from_bytes(data[i : i + 2], "big")
            i += 2
        elif n == 127:
            n = int.from_bytes(data[i : i + 8], "big")
            i += 8
        payloads.append(data[i : i + n])
        i += n
    return payloads


def rs_frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def rs_frames(data: bytes) -> list[bytes]:
    payloads = []
    i = 0
    while i < len(data):
        n = int.from_bytes(data[i + 1 : i + 4], "big")
        payloads.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return payloads


class Client:
    """A connection to a server factory over a :class:`NullTransport`, driven by bytes."""

    def __init__(self, factory: Any, transport_kind: str, serializer: str) -> None:
        self.kind = transport_kind
        self.serializer = SERIALIZERS[serializer]
        self.transport = NullTransport()
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        if transport_kind == "ws":
            request = (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {self.serializer.subprotocol}\r\n\r\n"
            )
            self.protocol.dataReceived(request.encode())
            reply = self.transport.take()
            assert reply.startswith(b"HTTP/1.1 101"), reply[:200]
        else:
            self.protocol.dataReceived(handshake_octets(SERIALIZER_IDS[serializer], 15))
            reply = self.transport.take()
            assert reply[0] == 0x7F and reply[1] & 0x0F, reply

    def frame(self, message: Any) -> bytes:
        payload = message if isinstance(message, bytes) else self.serializer.encode(message)
        if self.kind == "ws":
            return ws_client_frame(payload, self.serializer.binary)
        return rs_frame(payload)

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def received(self) -> list:
        data = self.transport.take()
        payloads = ws_server_frames(data) if self.kind == "ws" else rs_frames(data)
        return [self.serializer.decode(payload) for payload in payloads]

    def request(self, message: list) -> list:
        self.feed(self.frame(message))
        return self.received()


def _best_run(run: Any, repeat: int) -> tuple[float, list[float]]:
    """The fastest of ``repeat`` runs (as timeit does): on a shared machine the slower runs
    measure the neighbours (caches, hyperthreads, frequency), not the code."""
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(run())
    return min(times), times


def relay_path(transport_kind: str, serializer: str, calls: int, batch: int, repeat: int, payload: int) -> dict:
    """µs per relayed call (the best of ``repeat`` runs of ``calls`` calls)."""
    router = RouterCore(RouterConfig(realms=("realm1",)), reactor=Clock())
    options = ListenerOptions.from_config(router.config)
    factory = websocket_factory(router, options) if transport_kind == "ws" else rawsocket_factory(router, options)
    callee = Client(factory, transport_kind, serializer)
    caller = Client(factory, transport_kind, serializer)
    roles = {"roles": {"caller": {}, "callee": {}}}
    assert callee.request([HELLO, "realm1", roles])[0][0] == WELCOME
    assert caller.request([HELLO, "realm1", roles])[0][0] == WELCOME
    if transport_kind == "ws":
        # what is measured is the relay's own frame reader, not autobahn's fallback
        assert caller.protocol._frame_reader is not None and callee.protocol._frame_reader is not None
    assert callee.request([REGISTER, 1, {}, "com.bench.echo"])[0][0] == REGISTERED
    # one call to check the route, and to learn the invocation ids (sequential per callee)
    caller.feed(caller.frame([CALL, 1, {}, "com.bench.echo", ["x" * payload]]))
    (invocation,) = callee.received()
    assert invocation[0] == INVOCATION, invocation
    callee.feed(callee.frame([YIELD, invocation[1], {}, invocation[4]]))
    (result,) = caller.received()
    assert result[0] == RESULT and result[3] == ["x" * payload], result
    next_request, next_invocation = 2, invocation[1] + 1
    argument = ["x" * payload]

    def run() -> float:
        nonlocal next_request, next_invocation
        call_batches, yield_batches = [], []
        for start in range(0, calls, batch):
            count = min(batch, calls - start)
            call_batches.append(
                b"".join(caller.frame([CALL, next_request + i, {}, "com.bench.echo", argument]) for i in range(count))
            )
            yield_batches.append(
                b"".join(callee.frame([YIELD, next_invocation + i, {}, argument]) for i in range(count))
            )
            next_request += count
            next_invocation += count
        caller.transport.keep = callee.transport.keep = False
        writes_before = caller.transport.writes
        caller_feed, callee_feed = caller.protocol.dataReceived, callee.protocol.dataReceived
        started = time.thread_time()
        for call_bytes, yield_bytes in zip(call_batches, yield_batches):
            caller_feed(call_bytes)
            callee_feed(yield_bytes)
        elapsed = time.thread_time() - started
        results = caller.transport.writes - writes_before
        assert results == calls, f"{results} RESULT writes for {calls} calls"
        return elapsed / calls * 1e6

    best, runs = _best_run(run, repeat)
    counts = router.state_counts()
    assert counts["pending_calls"] == 0, counts
    return {"us": best, "runs_us": [round(v, 3) for v in runs], "median_us": round(statistics.median(runs), 3)}


def echo_path(transport_kind: str, serializer: str, calls: int, batch: int, repeat: int, payload: int) -> dict:
    """µs per echoed message (one in, one out) through the echo server's protocol."""
    if transport_kind == "ws":
        from autobahn.twisted.websocket import WebSocketServerFactory

        from promisifier.transport.websocket import DEFAULT_MAX_MESSAGE_SIZE

        factory = WebSocketServerFactory()
        factory.protocol = EchoWebSocket
        factory.setProtocolOptions(
            maxMessagePayloadSize=DEFAULT_MAX_MESSAGE_SIZE,
            maxFramePayloadSize=DEFAULT_MAX_MESSAGE_SIZE,
            failByDrop=False,
        )
    else:
        factory = RawSocketServerFactory(lambda connection: None, reactor=Clock())
        factory.protocol = EchoRawSocket
    client = Client(factory, transport_kind, serializer)
    message = client.frame([CALL, 123456, {}, "com.bench.echo", ["x" * payload]])
    client.feed(message)
    assert len(client.transport.take()) > 0

    def run() -> float:
        batches = [message * min(batch, calls - start) for start in range(0, calls, batch)]
        client.transport.keep = False
        writes_before = client.transport.writes
        feed = client.protocol.dataReceived
        started = time.thread_time()
        for data in batches:
            feed(data)
        elapsed = time.thread_time() - started
        assert client.transport.writes - writes_before == calls
        return elapsed / calls * 1e6

    best, runs = _best_run(run, repeat)
    return {"us": best, "runs_us": [round(v, 3) for v in runs], "median_us": round(statistics.median(runs), 3)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transports", type=harness.csv(), default=["ws", "rs"], help="ws and/or rs (default ws,rs)")
    parser.add_argument(
        "--serializers", type=harness.csv(), default=["msgpack", "json", "cbor"], help="default msgpack,json,cbor"
    )
    parser.add_argument("--calls", type=int, default=20000, help="calls (and echoes) per run (default 20000)")
    parser.add_argument("--batch", type=int, default=16, help="frames per dataReceived (default 16)")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the fastest is reported (default 7)")
    parser.add_argument("--payload", type=int, default=10, help="characters in the call's argument (default 10)")


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    results: list[dict] = []
    for transport_kind in args.transports:
        for serializer in args.serializers:
            prefix = f"hotpath.{transport_kind}.{serializer}"
            call = relay_path(transport_kind, serializer, args.calls, args.batch, args.repeat, args.payload)
            echo = echo_path(transport_kind, serializer, args.calls, args.batch, args.repeat, args.payload)
            results.append({"name": f"{prefix}.call_us", "value": round(call["us"], 3), "unit": "us", **call})
            results.append(
                {"name": f"{prefix}.calls_per_core", "value": round(1e6 / call["us"], 1), "unit": "calls_per_s"}
            )
            results.append({"name": f"{prefix}.echo_us", "value": round(echo["us"], 3), "unit": "us", **echo})
            results.append(
                {"name": f"{prefix}.share_of_ceiling", "value": round(2 * echo["us"] / call["us"], 3), "unit": "ratio"}
            )
    setup = {k: (str(v) if k in ("json", "log_dir") else v) for k, v in vars(args).items()}
    setup["pid"] = os.getpid()
    setup["loadavg"] = harness.loadavg()
    return results, setup
