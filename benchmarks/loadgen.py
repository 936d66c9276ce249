"""The load generator's worker process: ``python -m benchmarks.loadgen --role ROLE ...``.

One worker runs one role (caller, callee, publisher, subscriber, idle, echo) for one or
more sessions on its own Twisted reactor, talking to a WAMP router at ``--url``:
``ws://host:port/path`` (WebSocket, autobahn's plain ``WebSocketClientProtocol``; with
``--lean`` a minimal client of this module instead, :class:`LeanWsLink`) or
``rs://host:port`` (RawSocket, :mod:`promisifier.transport.rawsocket`'s client
protocol). Messages are encoded and decoded with promisifier's wire serializers and are
not checked (the router under test is trusted to speak WAMP); nothing is logged per
message.

It talks to the harness with JSON lines: on stdout ``{"event": "ready"}`` once every
session joined (and registered or subscribed), then ``{"event": "result", ...}``; on
stdin ``{"cmd": "run", "start": T0, "end": T1}`` (wall-clock times), ``{"cmd":
"totals"}`` (answered with ``{"event": "totals", "total": N}``, everything counted so far;
with ``--sequence`` also what the sequence check found)
and ``{"cmd": "quit"}``. Traffic starts when ``run`` arrives; what is counted is what completed
between ``T0`` and ``T1`` (counts are snapshotted by reactor timers, not per message),
and callers and publishers stop sending new requests at ``T1``. Every wait is bounded by
``--deadline`` seconds, after which the worker reports what it has and exits.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlparse

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver

from promisifier.transport.rawsocket import RawSocketClientFactory, RawSocketClientProtocol
from promisifier.wire import SERIALIZERS

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}


#: the harness's line protocol on stdin/stdout (Twisted's StandardIO makes stdout
#: non-blocking: writes go through its transport, which buffers what does not fit)
_control: Any = None


def emit(**fields: Any) -> None:
    line = json.dumps(fields).encode() + b"\n"
    if _control is not None and _control.transport is not None:
        _control.transport.write(line)
    else:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


# -- transports: a link hands payloads to its agent and sends payloads ---------------------


class WsLink(WebSocketClientProtocol):
    """autobahn's plain WebSocket client protocol; every frame goes to the agent as bytes."""

    agent: Any = None

    def onOpen(self) -> None:  # noqa: N802 - autobahn API
        self.agent = self.factory.make_agent()
        binary = self.factory.binary
        send_message = self.sendMessage

        def send_payload(payload: bytes) -> None:
            send_message(payload, binary)

        self.send_payload = send_payload
        self.agent.opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802 - autobahn API
        self.agent.on_payload(payload)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:  # noqa: N802 - autobahn API
        if self.agent is not None:
            self.agent.closed(code, reason)
        else:
            self.factory.worker.failed(f"WebSocket not opened: {code} {reason}")

    def lose(self) -> None:
        self.dropConnection(abort=True)


class RsLink(RawSocketClientProtocol):
    """promisifier's RawSocket client protocol; every frame goes to the agent as bytes."""

    agent: Any = None

    def send_payload(self, payload: bytes) -> None:
        self.transport.write(len(payload).to_bytes(4, "big") + payload)

    def _frame_received(self, payload: bytes) -> None:
        self.agent.on_payload(payload)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted API
        super().connectionLost(reason)
        if self.agent is not None:
            self.agent.closed(1006, str(reason))

    def lose(self) -> None:
        self.transport.abortConnection()


class LeanWsLink(Protocol):
    """A minimal WebSocket client, so that what a latency figure measures is the router:
    the opening handshake written by hand (and only its status line checked), frames of one
    piece each way, masked with one random key per connection (XOR of two integers), the
    server's frames read in place, its pings answered; no extensions, no fragments, no close
    handshake (the connection is dropped)."""

    agent: Any = None
    factory: Any

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.transport.setTcpNoDelay(True)
        self.buffer = b""
        self.open = False
        self.mask = os.urandom(4)
        self.opcode = 0x82 if self.factory.binary else 0x81
        url = urlparse(self.factory.worker.args.url)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {self.factory.subprotocol}\r\n\r\n"
            ).encode()
        )

    def send_payload(self, payload: bytes) -> None:
        self._send(self.opcode, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            header = bytes((opcode, 0x80 | size))
        elif size < 65536:
            header = bytes((opcode, 0x80 | 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((opcode, 0x80 | 127)) + size.to_bytes(8, "big")
        mask = self.mask
        key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")
        self.transport.write(header + mask + masked)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        buffer = self.buffer + data
        if not self.open:
            head, separator, buffer = buffer.partition(b"\r\n\r\n")
            if not separator:
                self.buffer = head
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.factory.worker.failed(f"WebSocket refused: {head[:200]!r}")
                return
            self.open = True
            self.agent = self.factory.make_agent()
            self.agent.opened(self)
        position, end = 0, len(buffer)
        while end - position >= 2:
            first, size = buffer[position], buffer[position + 1] & 0x7F
            start = position + 2
            if size == 126:
                size, start = int.from_bytes(buffer[start : start + 2], "big"), start + 2
            elif size == 127:
                size, start = int.from_bytes(buffer[start : start + 8], "big"), start + 8
            if end < start + size:
                break
            payload = buffer[start : start + size]
            position = start + size
            opcode = first & 0x0F
            if opcode in (1, 2):
                self.agent.on_payload(payload)
            elif opcode == 9:
                self._send(0x8A, payload)
            elif opcode == 8:
                self.transport.loseConnection()
        self.buffer = buffer[position:]

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted API
        if self.agent is not None:
            self.agent.closed(1006, str(reason))
        else:
            self.factory.worker.failed(f"WebSocket not opened: {reason}")

    def lose(self) -> None:
        self.transport.abortConnection()


def connect(worker: Worker, make_agent: Any, bind: str | None = None) -> None:
    """Open one connection to the worker's URL whose agent ``make_agent()`` builds.

    ``bind``: the source address of the connection (default: the system's choice).
    """
    url = urlparse(worker.args.url)
    serializer = worker.args.serializer
    host, port = url.hostname or "127.0.0.1", url.port
    if url.scheme == "ws" and worker.args.lean:
        factory = Factory.forProtocol(LeanWsLink)
        factory.subprotocol = SERIALIZERS[serializer].subprotocol  # type: ignore[attr-defined]
        factory.binary = SERIALIZERS[serializer].binary
    elif url.scheme == "ws":
        factory = WebSocketClientFactory(
            url=worker.args.url,
            protocols=[SERIALIZERS[serializer].subprotocol],  # type: ignore[attr-defined]
        )
        factory.protocol = WsLink
        factory.setProtocolOptions(
            utf8validateIncoming=False,  # the serializer decodes (and checks) the payload
            maxMessagePayloadSize=0,
            maxFramePayloadSize=0,
            openHandshakeTimeout=60,
            closeHandshakeTimeout=1,
            autoPingInterval=0,
        )
        factory.binary = SERIALIZERS[serializer].binary
    elif url.scheme == "rs":
        factory = RawSocketClientFactory(
            lambda connection: None,
            serializer=serializer,
            on_open=lambda link: _rs_opened(link, make_agent),
            on_open_failed=lambda link, code, reason: worker.failed(f"RawSocket refused: {code} {reason}"),
        )
        factory.protocol = RsLink
    else:
        raise SystemExit(f"--url: ws://host:port/path or rs://host:port, not {worker.args.url!r}")
    factory.make_agent = make_agent
    factory.worker = worker
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=30, bindAddress=(bind, 0) if bind else None)
    endpoint.connect(factory).addErrback(lambda failure: worker.failed(f"cannot connect: {failure.getErrorMessage()}"))


def _rs_opened(link: RsLink, make_agent: Any) -> None:
    link.agent = make_agent()
    link.agent.opened(link)


# -- agents: the WAMP roles ------------------------------------------------------------------


class Agent:
    """One WAMP session: HELLO/WELCOME, then the role's traffic."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        serializer = SERIALIZERS[worker.args.serializer]
        self.encode = serializer.encode
        self.decode = serializer.decode
        self.link: Any = None
        self.send_payload: Any = None
        self.joined = False
        self.count = 0

    def opened(self, link: Any) -> None:
        self.link = link
        self.send_payload = link.send_payload
        self.send([HELLO, self.worker.args.realm, {"roles": ROLES}])

    def send(self, message: list) -> None:
        self.send_payload(self.encode(message))

    def on_payload(self, payload: bytes) -> None:
        message = self.decode(payload)
        kind = message[0]
        if kind == WELCOME:
            self.joined = True
            self.on_join()
        elif kind in (ABORT, GOODBYE) or (kind == ERROR and message[1] in (REGISTER, SUBSCRIBE)):
            self.worker.failed(f"router answered {message!r:.300}")
        else:
            self.on_message(message)

    def on_join(self) -> None:
        self.worker.agent_ready(self)

    def on_message(self, message: list) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def closed(self, code: Any, reason: Any) -> None:
        if not self.worker.quitting:
            self.worker.failed(f"connection closed: {code} {reason}")


def _payload(size: int) -> Any:
    """An argument whose encoding is about ``size`` octets."""
    return "x" * max(size, 0)


class Caller(Agent):
    """Keeps ``--outstanding`` calls in flight; with ``--latency``, times each call."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker)
        args = worker.args
        self.procedure = args.procedure
        self.outstanding = args.outstanding
        self.arguments = [_payload(args.payload)]
        self.request_id = 0
        self.running = False
        self.in_flight = 0
        self.errors = 0
        self.sent_at: dict[int, float] = {}
        self.timing = args.latency
        self.latencies: list[float] = []

    def start(self) -> None:
        self.running = True
        for _ in range(self.outstanding):
            self._call()

    def stop(self) -> None:
        self.running = False

    def _call(self) -> None:
        self.request_id += 1
        self.in_flight += 1
        if self.timing:
            self.sent_at[self.request_id] = time.perf_counter()
        self.send_payload(self.encode([CALL, self.request_id, {}, self.procedure, self.arguments]))

    def on_payload(self, payload: bytes) -> None:
        if not self.joined:
            Agent.on_payload(self, payload)
            return
        message = self.decode(payload)
        if message[0] == RESULT:
            self.count += 1
            request_id = message[1]
        elif message[0] == ERROR:
            self.errors += 1
            if self.errors == 1:
                self.worker.note(f"first call error: {message!r:.300}")
            request_id = message[2]
        else:
            return
        self.in_flight -= 1
        if self.timing:
            sent = self.sent_at.pop(request_id, None)
            if sent is not None and self.worker.in_window:
                self.latencies.append(time.perf_counter() - sent)
        if self.running:
            self._call()


class Callee(Agent):
    """Registers ``--procedure`` and answers every INVOCATION with its arguments."""

    def on_join(self) -> None:
        invoke = self.worker.args.invoke
        self.send([REGISTER, 1, {"invoke": invoke} if invoke else {}, self.worker.args.procedure])

    def on_payload(self, payload: bytes) -> None:
        if not self.joined:
            Agent.on_payload(self, payload)
            return
        message = self.decode(payload)
        if message[0] == INVOCATION:
            self.count += 1
            self.send_payload(self.encode([YIELD, message[1], {}, *message[4:5]]))
        elif message[0] == REGISTERED:
            self.worker.agent_ready(self)
        else:
            Agent.on_payload(self, payload)


class Publisher(Agent):
    """Keeps ``--outstanding`` acknowledged publications in flight; with ``--sequence``
    each carries its number (1, 2, ...) as its first argument."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker)
        args = worker.args
        self.topic = args.topic
        self.outstanding = args.outstanding
        self.arguments = [_payload(args.payload)]
        self.request_id = 0
        self.running = False

    def start(self) -> None:
        self.running = True
        for _ in range(self.outstanding):
            self._publish()

    def stop(self) -> None:
        self.running = False

    def _publish(self) -> None:
        self.request_id += 1
        arguments = [self.request_id, *self.arguments] if self.worker.args.sequence else self.arguments
        self.send_payload(self.encode([PUBLISH, self.request_id, {"acknowledge": True}, self.topic, arguments]))

    def sequence(self) -> dict[str, int]:
        return {"sent": self.request_id}

    def on_payload(self, payload: bytes) -> None:
        if not self.joined:
            Agent.on_payload(self, payload)
            return
        if self.decode(payload)[0] == PUBLISHED:
            self.count += 1
            if self.running:
                self._publish()


class Subscriber(Agent):
    """Subscribes to ``--topic`` and counts the frames that arrive (events, not decoded);
    with ``--sequence`` decodes each event and checks the publisher's numbers: each one
    after the last one seen (``missing`` counts the numbers skipped), never one at or
    below it (``out_of_order``: late, repeated or reordered)."""

    subscribed = False
    last = 0
    missing = 0
    out_of_order = 0

    def on_join(self) -> None:
        self.send([SUBSCRIBE, 1, {}, self.worker.args.topic])

    def on_payload(self, payload: bytes) -> None:
        if self.subscribed:
            self.count += 1
            if self.worker.args.sequence:
                self._check(self.decode(payload))
            return
        if not self.joined:
            Agent.on_payload(self, payload)
            return
        message = self.decode(payload)
        if message[0] == SUBSCRIBED:
            self.subscribed = True
            self.worker.agent_ready(self)
        else:
            Agent.on_payload(self, payload)

    def _check(self, message: list) -> None:
        number = message[4][0] if message[0] == EVENT and len(message) > 4 and message[4] else None
        if type(number) is not int:
            self.out_of_order += 1
        elif number > self.last:
            self.missing += number - self.last - 1
            self.last = number
        else:
            self.out_of_order += 1

    def sequence(self) -> dict[str, int]:
        return {"received": self.count, "last": self.last, "missing": self.missing, "out_of_order": self.out_of_order}


class Idle(Agent):
    """Joins and stays."""


class Echo(Agent):
    """Not WAMP: sends a CALL-sized frame, ``--outstanding`` in flight, and counts echoes."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker)
        args = worker.args
        self.frame = self.encode([CALL, 123456, {}, args.procedure, [_payload(args.payload)]])
        self.outstanding = args.outstanding
        self.running = False

    def opened(self, link: Any) -> None:
        self.link = link
        self.send_payload = link.send_payload
        self.joined = True
        self.worker.agent_ready(self)

    def start(self) -> None:
        self.running = True
        for _ in range(self.outstanding):
            self.send_payload(self.frame)

    def stop(self) -> None:
        self.running = False

    def on_payload(self, payload: bytes) -> None:
        self.count += 1
        if self.running:
            self.send_payload(self.frame)


AGENTS = {
    "caller": Caller,
    "callee": Callee,
    "publisher": Publisher,
    "subscriber": Subscriber,
    "idle": Idle,
    "echo": Echo,
}


# -- the worker -------------------------------------------------------------------------------


class Control(LineReceiver):
    delimiter = b"\n"

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def lineReceived(self, line: bytes) -> None:  # noqa: N802 - Twisted API
        self.worker.command(json.loads(line))

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted API
        self.worker.quit()  # the harness went away


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.agents: list[Agent] = []
        self.ready = 0
        self.quitting = False
        self.in_window = False
        self.counts_at_start: list[int] | None = None
        self.started_at = 0.0
        self.notes: list[str] = []
        self.reported = False

    def begin(self) -> None:
        make = AGENTS[self.args.role]
        started = time.time()
        self.connect_started = started
        # At most --connect-concurrency handshakes at a time: a burst of thousands would
        # only queue in the router's listen backlog and run into handshake timeouts.
        self._make = make
        self._to_open = self.args.sessions
        self._next_slot = 0.0
        for _ in range(min(self.args.connect_concurrency, self._to_open)):
            self._open_next()
        reactor.callLater(self.args.deadline, self._deadline)

    def _open_next(self) -> None:
        if self._to_open <= 0:
            return
        self._to_open -= 1
        rate = self.args.connect_rate
        if rate > 0:  # at most `rate` connections a second: each takes the next free slot
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / rate
            if slot > now:
                reactor.callLater(slot - now, self._connect)
                return
        self._connect()

    def _connect(self) -> None:
        connect(self, lambda: self._new_agent(self._make), bind=self.args.bind)

    def _new_agent(self, make: Any) -> Agent:
        agent = make(self)
        self.agents.append(agent)
        return agent

    def agent_ready(self, agent: Agent) -> None:
        self.ready += 1
        self._open_next()
        if self.ready == self.args.sessions:
            gc.collect()
            emit(
                event="ready",
                pid=os.getpid(),
                sessions=self.ready,
                seconds=round(time.time() - self.connect_started, 3),
            )

    def note(self, text: str) -> None:
        if len(self.notes) < 5:
            self.notes.append(text)

    def failed(self, why: str) -> None:
        if self.quitting:
            return
        emit(event="error", error=why, pid=os.getpid())
        self.quit()

    def command(self, command: dict) -> None:
        if command["cmd"] == "run":
            now = time.time()
            for agent in self.agents:
                agent.start()
            reactor.callLater(max(command["start"] - now, 0), self._window_start)
            reactor.callLater(max(command["end"] - now, 0), self._window_end)
        elif command["cmd"] == "totals":
            checks = [agent.sequence() for agent in self.agents if hasattr(agent, "sequence")]
            sequence = {key: sum(check[key] for check in checks) for key in checks[0]} if checks else None
            emit(event="totals", pid=os.getpid(), total=sum(agent.count for agent in self.agents), sequence=sequence)
        elif command["cmd"] == "quit":
            self.quit()

    def _window_start(self) -> None:
        self.in_window = True
        self.started_at = time.time()
        self.counts_at_start = [agent.count for agent in self.agents]

    def _window_end(self) -> None:
        ended = time.time()
        self.in_window = False
        counts = [agent.count for agent in self.agents]
        for agent in self.agents:
            agent.stop()
        before = self.counts_at_start or [0] * len(counts)
        result: dict[str, Any] = {
            "event": "result",
            "pid": os.getpid(),
            "count": sum(counts) - sum(before),
            "total": sum(counts),
            "seconds": round(ended - self.started_at, 4),
            "notes": self.notes,
        }
        latencies = [value for agent in self.agents for value in getattr(agent, "latencies", ())]
        if latencies:
            result["latencies_us"] = [round(value * 1e6, 1) for value in latencies]
        errors = sum(getattr(agent, "errors", 0) for agent in self.agents)
        if errors:
            result["errors"] = errors
        self.reported = True
        emit(**result)

    def _deadline(self) -> None:
        if not self.reported and not self.quitting:
            emit(event="error", error=f"deadline of {self.args.deadline} s reached", pid=os.getpid())
        self.quit()

    def quit(self) -> None:
        if self.quitting:
            return
        self.quitting = True
        for agent in self.agents:
            if agent.link is not None:
                agent.link.lose()
        reactor.callLater(0.2, reactor.stop)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=sorted(AGENTS), required=True)
    parser.add_argument("--url", required=True, help="ws://host:port/path or rs://host:port")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--serializer", choices=sorted(SERIALIZERS), default="msgpack")
    parser.add_argument("--sessions", type=int, default=1, help="sessions (connections) in this process")
    parser.add_argument("--outstanding", type=int, default=16, help="requests in flight per session")
    parser.add_argument("--payload", type=int, default=10, help="characters in the call / event argument")
    parser.add_argument("--procedure", default="com.bench.echo")
    parser.add_argument("--topic", default="com.bench.topic")
    parser.add_argument("--invoke", help="callees: register with this invoke policy (shared), e.g. roundrobin")
    parser.add_argument("--latency", action="store_true", help="time each call (callers)")
    parser.add_argument(
        "--lean", action="store_true", help="WebSocket: a minimal client of this module instead of autobahn's"
    )
    parser.add_argument(
        "--sequence", action="store_true", help="number the publications and check their order (publisher, subscriber)"
    )
    parser.add_argument("--connect-concurrency", type=int, default=32, help="handshakes in progress at a time")
    parser.add_argument(
        "--connect-rate", type=float, default=0.0, help="connections opened per second at most (default 0: no limit)"
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds after which the worker gives up")
    parser.add_argument(
        "--bind", default=None, help="source address of the connections, e.g. 127.0.0.2 (default: the system's)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global _control
    worker = Worker(args)
    _control = Control(worker)
    StandardIO(_control)
    reactor.callWhenRunning(worker.begin)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
