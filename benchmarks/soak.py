"""Soak: mixed calls, events and connection churn against a relay process for a set time.

``python -m benchmarks soak [--minutes 30 | --seconds S] [--report-every 60]``

The relay runs in its own process (``python -m promisifier relay --endpoint
tcp:PORT:interface=127.0.0.1``, started and stopped by :mod:`benchmarks.harness`), and so
does every worker (``python -m benchmarks.soak --worker ROLE ...``, driven with the JSON
lines of :mod:`benchmarks.loadgen`, whose transports and agents it reuses):

* ``callee``: one session registers ``com.soak.echo`` and answers every INVOCATION;
* ``caller``: ``--callers`` sessions call it, ``--call-rate`` calls/s in all (paced);
* ``publisher``: ``--publishers`` sessions publish (acknowledged) to ``com.soak.topic``,
  ``--publish-rate`` publications/s in all;
* ``subscriber``: ``--subscribers`` sessions subscribe to it and count the events;
* ``churner`` (``--churners`` processes, ``--churn-concurrency`` sessions at a time each):
  connect, join, register a procedure of their own, subscribe (exact and prefix), call
  ``com.soak.echo``, publish, and then leave: by GOODBYE and a clean close, by dropping
  the TCP connection once everything was answered, or by dropping it at once with the
  call and the publication still in flight; then the next churn, ``--churn-pause``
  seconds later;
* ``monitor``: one session that calls the meta procedures ``wamp.session.count``,
  ``wamp.registration.list`` and ``wamp.subscription.list`` when asked.

Every ``--report-every`` seconds (default 60) one ``SOAK`` line gives the relay's RSS
(``VmRSS`` of ``/proc/PID/status``), its peak (``VmHWM``), its CPU share over the
interval, the object counts the relay reports itself (its ``/status.json`` totals:
connections, sessions, registrations, subscriptions, pending calls; and the meta
procedures' answers) and the traffic so far. At the end, after the churners stopped and a
short settle, a last line, then ``RESULT`` lines: RSS at start (all workers joined,
before traffic), at the end and the growth, and the totals.

Every loop is bounded in count and time, only 127.0.0.1 is used, and the relay and the
workers stop by themselves at the end (the workers also at ``--deadline``); on any error
every child is terminated.

10,000 concurrent idle sessions on one relay are the ``idle`` scenario's
(``python -m benchmarks idle --sessions 10000``: the harness raises RLIMIT_NOFILE of the
relay and of the workers, and spreads the sessions over processes of 2,500).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import harness

PROCEDURE = "com.soak.echo"
TOPIC = "com.soak.topic"
#: seconds between the end of traffic and the last reading (churns in flight finish)
SETTLE = 3.0


# -- the driver (this process) ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak (default 30)")
    parser.add_argument("--seconds", type=float, help="length of the soak in seconds (instead of --minutes)")
    parser.add_argument("--report-every", type=float, default=60.0, help="seconds between two SOAK lines (default 60)")
    parser.add_argument(
        "--transport",
        choices=("ws", "rs"),
        default="ws",
        help="ws: `python -m promisifier relay` (default); rs: `python -m benchmarks.servers relay`",
    )
    parser.add_argument("--serializer", choices=("msgpack", "json"), default="msgpack")
    parser.add_argument("--callers", type=int, default=2, help="caller sessions (default 2)")
    parser.add_argument("--call-rate", type=float, default=200.0, help="calls per second, all callers (default 200)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher sessions (default 2)")
    parser.add_argument(
        "--publish-rate", type=float, default=50.0, help="publications per second, all publishers (default 50)"
    )
    parser.add_argument("--subscribers", type=int, default=10, help="subscriber sessions (default 10)")
    parser.add_argument("--churners", type=int, default=2, help="churner processes (default 2)")
    parser.add_argument(
        "--churn-concurrency", type=int, default=4, help="churning sessions at a time per process (default 4)"
    )
    parser.add_argument(
        "--churn-pause", type=float, default=0.05, help="seconds between two churns of one slot (default 0.05)"
    )
    parser.add_argument("--max-churns", type=int, default=10_000_000, help="churns per churner process at most")
    parser.add_argument("--payload", type=int, default=100, help="characters in call and event arguments (default 100)")
    parser.add_argument(
        "--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "promisifier-benchmarks", help="process logs"
    )
    # what benchmarks.harness.server() reads
    parser.set_defaults(url=None, relay_pid=None, relay="promisifier", profile=None, py_spy=None)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (bytes) and Threads of process ``pid``, from ``/proc/PID/status``."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                found[key] = int(value)
    return found


class SoakWorker(harness.Worker):
    """A ``python -m benchmarks.soak --worker ROLE`` process; the rest as harness.Worker."""

    def __init__(self, role: str, url: str, log_dir: Path, **options: Any) -> None:
        argv = [sys.executable, "-m", "benchmarks.soak", "--worker", role, "--url", url]
        for key, value in options.items():
            if value is not None:
                argv += [f"--{key.replace('_', '-')}", str(value)]
        self.role = role
        self.argv = argv
        self.log_path = log_dir / f"soak-{role}-{os.getpid()}.log"
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "ab"),
            cwd=harness.REPO,
            env=harness._env(),
            preexec_fn=harness._raise_fd_limit,
        )
        self._buffer = b""
        self.ready = None
        self.result = None

    def ask(self, cmd: str, event: str, timeout: float = 15.0) -> dict:
        """Send ``cmd`` and return the next ``event`` (a result met on the way is kept)."""
        self.send(cmd=cmd)
        while True:
            answer = self.read_event(timeout)
            if answer.get("event") == "result":
                self.result = answer
            if answer.get("event") == event:
                return answer

    def wait_result(self, timeout: float) -> dict:
        return self.result if self.result is not None else super().wait_result(timeout)


def status_json(port: int) -> dict | None:
    """The relay's own ``/status.json`` (None if it does not serve one)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=10) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def reading(relay: harness.Server, monitor: SoakWorker, workers: list[SoakWorker], port: int) -> dict:
    """One look at the relay: /proc, its status JSON, the meta procedures, the workers' totals."""
    status = proc_status(relay.pid)  # type: ignore[arg-type]
    snapshot = status_json(port) if relay.urls.get("ws") else None
    meta = monitor.ask("probe", "probe")
    totals: dict[str, int] = {}
    for worker in workers:
        for key, value in worker.ask("totals", "totals")["counts"].items():
            totals[key] = totals.get(key, 0) + value
    return {
        "t": time.time(),
        "rss": status["VmRSS"],
        "hwm": status["VmHWM"],
        "threads": status.get("Threads"),
        "cpu": relay.cpu(),
        "loadavg": harness.loadavg(),
        "state": (snapshot or {}).get("totals", {}),
        "meta": {k: v for k, v in meta.items() if k not in ("event", "pid")},
        "traffic": totals,
    }


def _mb(value: float) -> str:
    return f"{value / 1048576:.1f}"


def print_line(label: str, now: dict, start: dict, previous: dict) -> None:
    elapsed = now["t"] - previous["t"]
    cpu = (now["cpu"] - previous["cpu"]) / elapsed if elapsed > 0 else 0.0
    state = now["state"]
    objects = " ".join(
        f"{k}={state[k]}"
        for k in ("connections", "sessions", "registrations", "subscriptions", "pending_calls")
        if k in state
    )
    meta = now["meta"]
    traffic = now["traffic"]
    print(
        f"SOAK {label} rss={_mb(now['rss'])}MB growth={(now['rss'] - start['rss']) / 1048576:+.1f}MB "
        f"hwm={_mb(now['hwm'])}MB relay_cpu={cpu:.2f} load={now['loadavg'][0]:.2f} | status.json: {objects} "
        f"| meta: sessions={meta.get('sessions')} registrations={meta.get('registrations')} "
        f"subscriptions={meta.get('subscriptions')} | calls={traffic.get('calls', 0)} call_errors={traffic.get('call_errors', 0)} "
        f"published={traffic.get('published', 0)} events={traffic.get('events', 0)} churns={traffic.get('churns', 0)} "
        f"(clean={traffic.get('clean', 0)} dropped={traffic.get('dropped', 0)} dropped_in_flight={traffic.get('dropped_in_flight', 0)} "
        f"timeouts={traffic.get('timeouts', 0)})",
        flush=True,
    )


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    duration = args.seconds if args.seconds is not None else args.minutes * 60
    if duration <= 0 or args.report_every <= 0:
        raise SystemExit("--seconds/--minutes and --report-every must be > 0")
    args.log_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminate)  # the finally clauses stop every child
    deadline = duration + 120  # each worker quits by itself after this many seconds
    loadavg_before = harness.loadavg()
    with harness.server("relay", args.transport, args, args.log_dir) as relay, harness.workers() as started:
        url = relay.urls[args.transport]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        time.sleep(1.0)
        rss_idle = proc_status(relay.pid)["VmRSS"]  # type: ignore[arg-type]
        common = dict(serializer=args.serializer, deadline=deadline, payload=args.payload)

        def spawn(role: str, **options: Any) -> SoakWorker:
            worker = SoakWorker(role, url, args.log_dir, **common, **options)
            started.append(worker)
            return worker

        monitor = spawn("monitor")
        spawn("callee")
        spawn("subscriber", sessions=args.subscribers)
        spawn("caller", sessions=args.callers, rate=args.call_rate)
        spawn("publisher", sessions=args.publishers, rate=args.publish_rate)
        for _ in range(args.churners):
            spawn("churner", sessions=args.churn_concurrency, pause=args.churn_pause, max_churns=args.max_churns)
        for worker in started:
            worker.wait_ready(120)
        traffic_workers = [w for w in started if w is not monitor]
        start = reading(relay, monitor, traffic_workers, port)
        print(
            f"SOAK start: relay pid {relay.pid} at {url}, idle rss={_mb(rss_idle)}MB, with every worker joined "
            f"rss={_mb(start['rss'])}MB; {duration:g} s, a line every {args.report_every:g} s",
            flush=True,
        )
        print_line("t=0s", start, start, start)
        t0 = time.time()
        end = t0 + duration
        for worker in traffic_workers:
            worker.send(cmd="run", start=t0, end=end)
        lines = [start]
        previous = start
        next_at = t0 + args.report_every
        for _ in range(int(duration / args.report_every) + 2):  # bounded: one pass per line
            if next_at > end - 0.5 * args.report_every and next_at < end:
                next_at = end  # a short last interval is merged into the end line
            if next_at >= end:
                break
            time.sleep(max(next_at - time.time(), 0))
            now = reading(relay, monitor, traffic_workers, port)
            print_line(f"t={now['t'] - t0:.0f}s", now, start, previous)
            lines.append(now)
            previous = now
            next_at += args.report_every
        time.sleep(max(end - time.time(), 0))
        results_of = {w: w.wait_result(60) for w in traffic_workers}
        time.sleep(SETTLE)
        final = reading(relay, monitor, traffic_workers, port)
        print_line(f"end (t={final['t'] - t0:.0f}s, {SETTLE:g} s after traffic stopped)", final, start, previous)
        lines.append(final)
        traffic = final["traffic"]
        # the workers quit when harness.workers() ends; the relay stops after them
    growth = final["rss"] - start["rss"]
    print(
        f"SOAK rss start={_mb(start['rss'])}MB end={_mb(final['rss'])}MB growth={growth / 1048576:+.2f}MB "
        f"peak={_mb(final['hwm'])}MB over {duration:g} s",
        flush=True,
    )
    elapsed = max(final["t"] - t0 - SETTLE, 1e-9)
    results = [
        {"name": "soak.rss_start", "value": round(start["rss"] / 1048576, 2), "unit": "MiB"},
        {"name": "soak.rss_end", "value": round(final["rss"] / 1048576, 2), "unit": "MiB"},
        {"name": "soak.rss_growth", "value": round(growth / 1048576, 2), "unit": "MiB"},
        {"name": "soak.rss_peak", "value": round(final["hwm"] / 1048576, 2), "unit": "MiB"},
        {"name": "soak.calls", "value": traffic.get("calls", 0), "unit": "calls"},
        {"name": "soak.call_errors", "value": traffic.get("call_errors", 0), "unit": "calls"},
        {"name": "soak.events", "value": traffic.get("events", 0), "unit": "events"},
        {"name": "soak.churns", "value": traffic.get("churns", 0), "unit": "sessions"},
        {"name": "soak.churn_rate", "value": round(traffic.get("churns", 0) / elapsed, 1), "unit": "sessions_per_s"},
    ]
    for key in ("sessions", "registrations", "subscriptions", "pending_calls"):
        if key in final["state"]:
            results.append({"name": f"soak.end.{key}", "value": final["state"][key], "unit": "objects"})
    setup = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    setup.update(
        duration_s=duration,
        relay=relay.command,
        rss_idle=rss_idle,
        loadavg_before=loadavg_before,
        loadavg_after=harness.loadavg(),
        lines=lines,
        worker_results={w.role + f"-{w.process.pid}": r for w, r in results_of.items()},
    )
    return results, setup


# -- the worker processes (``python -m benchmarks.soak --worker ROLE``) ------------------------


def worker_main(argv: list[str]) -> int:
    """A worker on its own reactor, speaking benchmarks.loadgen's JSON lines."""
    from twisted.internet import reactor, task
    from twisted.internet.stdio import StandardIO

    from benchmarks import loadgen
    from benchmarks.loadgen import (
        CALL,
        ERROR,
        GOODBYE,
        INVOCATION,
        PUBLISH,
        PUBLISHED,
        REGISTER,
        REGISTERED,
        RESULT,
        SUBSCRIBE,
        SUBSCRIBED,
        WELCOME,
        YIELD,
        Agent,
    )

    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak --worker")
    parser.add_argument(
        "--worker", required=True, choices=("monitor", "callee", "caller", "publisher", "subscriber", "churner")
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--serializer", default="msgpack")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, all sessions of the process")
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("--max-churns", type=int, default=10_000_000)
    parser.add_argument("--deadline", type=float, default=300.0)
    args = parser.parse_args(argv)
    # The agents are the load generator's, which read its options: give them its defaults
    # (a new load generator option must not stop the soak's workers).
    for name, value in vars(loadgen.parse_args(["--role", "caller", "--url", args.url])).items():
        if not hasattr(args, name):
            setattr(args, name, value)
    args.procedure, args.topic = PROCEDURE, TOPIC
    argument = ["x" * args.payload]
    #: requests in flight per session at most (paced roles); over it a tick is skipped
    cap = 64

    class Paced(Agent):
        """Sends one request per tick of the worker's clock (shared over its sessions)."""

        def __init__(self, worker: Any) -> None:
            super().__init__(worker)
            self.request_id = 0
            self.in_flight = 0

        def tick(self) -> None:
            if self.in_flight < cap and self.send_payload is not None:
                self.request_id += 1
                self.in_flight += 1
                self.send(self.request())

        def on_message(self, message: list) -> None:
            if message[0] in (RESULT, PUBLISHED):
                self.in_flight -= 1
                self.worker.counts[self.done] += 1
            elif message[0] == ERROR:
                self.in_flight -= 1
                self.worker.counts[self.done + "_errors"] += 1
                self.worker.note(f"error: {message!r:.200}")

    class Caller(Paced):
        done = "calls"

        def request(self) -> list:
            return [CALL, self.request_id, {}, PROCEDURE, argument]

    class Publisher(Paced):
        done = "published"

        def request(self) -> list:
            return [PUBLISH, self.request_id, {"acknowledge": True}, TOPIC, argument]

    class Callee(loadgen.Callee):
        def on_payload(self, payload: bytes) -> None:
            if self.joined:
                message = self.decode(payload)
                if message[0] == INVOCATION:
                    self.worker.counts["invocations"] += 1
                    self.send([YIELD, message[1], {}, message[4] if len(message) > 4 else []])
                    return
            super().on_payload(payload)

    class Subscriber(loadgen.Subscriber):
        def on_payload(self, payload: bytes) -> None:
            if self.subscribed:
                self.worker.counts["events"] += 1
                return
            super().on_payload(payload)

    class Monitor(Agent):
        """Answers ``probe``: the meta procedures' view of the realm."""

        def __init__(self, worker: Any) -> None:
            super().__init__(worker)
            self.waiting: dict[int, str] = {}
            self.answers: dict[str, Any] = {}
            self.probing = False

        def probe(self) -> None:
            self.answers = {}
            self.probing = True
            for request_id, (name, procedure) in enumerate(
                (
                    ("sessions", "wamp.session.count"),
                    ("registrations", "wamp.registration.list"),
                    ("subscriptions", "wamp.subscription.list"),
                ),
                start=1,
            ):
                self.waiting[request_id] = name
                self.send([CALL, request_id, {}, procedure, []])

        def on_message(self, message: list) -> None:
            if message[0] == RESULT and message[1] in self.waiting:
                name = self.waiting.pop(message[1])
                value = (message[3] if len(message) > 3 else [None])[0]
                if isinstance(value, dict):  # {"exact": [ids], "prefix": [...], "wildcard": [...]}
                    self.answers[name + "_by_policy"] = {k: len(v) for k, v in value.items()}
                    value = sum(len(v) for v in value.values())
                self.answers[name] = value
            elif message[0] == ERROR and message[2] in self.waiting:
                name = self.waiting.pop(message[2])
                self.answers[name] = f"error {message[4]}"
            if self.probing and not self.waiting:
                self.probing = False
                loadgen.emit(event="probe", pid=os.getpid(), **self.answers)

    class Churner(Agent):
        """One churn: join, register, subscribe twice, call, publish, leave (3 ways)."""

        def __init__(self, worker: Any, number: int) -> None:
            super().__init__(worker)
            self.number = number
            self.mode = number % 3  # 0 GOODBYE, 1 drop when answered, 2 drop with requests in flight
            self.waiting = 0
            self.leaving = False
            self.ended = False
            self.timer = reactor.callLater(15.0, self.timed_out)

        def on_payload(self, payload: bytes) -> None:
            message = self.decode(payload)
            kind = message[0]
            if kind == WELCOME:
                self.joined = True
                own = f"com.soak.churn.p{os.getpid()}.n{self.number}"
                for message_out in (
                    [REGISTER, 1, {}, own],
                    [SUBSCRIBE, 2, {}, TOPIC],
                    [SUBSCRIBE, 3, {"match": "prefix"}, "com.soak"],
                    [CALL, 4, {}, PROCEDURE, argument],
                    [PUBLISH, 5, {"acknowledge": True}, TOPIC, argument],
                ):
                    self.send(message_out)
                self.waiting = 5
            elif kind in (REGISTERED, SUBSCRIBED, RESULT, PUBLISHED, ERROR) and not self.leaving:
                if kind == ERROR:
                    self.worker.counts["churn_errors"] += 1
                    self.worker.note(f"churn error: {message!r:.200}")
                self.waiting -= 1
                # mode 2 drops at the first answer: the call and the publication in flight
                if self.waiting == 0 or self.mode == 2:
                    self.leave()
            elif kind == GOODBYE and self.leaving:
                self.close_cleanly()
            elif kind == INVOCATION:  # not expected: nobody calls a churner's procedure
                self.send([ERROR, INVOCATION, message[1], {}, "com.soak.error.unexpected"])

        def leave(self) -> None:
            self.leaving = True
            if self.mode == 0:
                self.send([GOODBYE, {}, "wamp.close.close_realm"])
            else:
                self.link.lose()

        def close_cleanly(self) -> None:
            link = self.link
            if hasattr(link, "sendClose"):
                link.sendClose(code=1000)
            else:
                link.transport.loseConnection()

        def timed_out(self) -> None:
            self.timer = None
            self.worker.counts["timeouts"] += 1
            if self.link is not None:
                self.link.lose()
            else:
                self.closed(None, "timeout")

        def closed(self, code: Any, reason: Any) -> None:
            if self.ended:
                return
            self.ended = True
            if self.timer is not None and self.timer.active():
                self.timer.cancel()
            if self.leaving:
                self.worker.counts["churns"] += 1
                self.worker.counts[("clean", "dropped", "dropped_in_flight")[self.mode]] += 1
            elif not self.worker.quitting:
                self.worker.counts["churn_unexpected_close"] += 1
                self.worker.note(f"churn closed before leaving: {code} {reason}")
            self.worker.churn_ended(self)

    class SoakWorker:
        def __init__(self) -> None:
            self.args = args
            self.role = args.worker
            self.agents: list[Any] = []
            self.ready = 0
            self.quitting = False
            self.running = False
            self.notes: list[str] = []
            self.churn_number = 0
            self.clock: task.LoopingCall | None = None
            self.next_agent = 0
            self.reported = False
            self.counts: dict[str, int] = defaultdict(int)

        def begin(self) -> None:
            reactor.callLater(args.deadline, self.deadline)
            if self.role == "churner":
                loadgen.emit(event="ready", pid=os.getpid(), sessions=0)
                return
            make = {
                "monitor": Monitor,
                "callee": Callee,
                "caller": Caller,
                "publisher": Publisher,
                "subscriber": Subscriber,
            }[self.role]
            for _ in range(args.sessions):
                loadgen.connect(self, lambda: self.new_agent(make))

        def new_agent(self, make: Any) -> Any:
            agent = make(self)
            self.agents.append(agent)
            return agent

        def agent_ready(self, agent: Any) -> None:
            self.ready += 1
            if self.ready == args.sessions:
                loadgen.emit(event="ready", pid=os.getpid(), sessions=self.ready)

        # churn slots
        def churn(self) -> None:
            if not self.running or self.quitting or self.churn_number >= args.max_churns:
                return
            self.churn_number += 1
            number = self.churn_number
            loadgen.connect(self, lambda: self.new_agent(lambda w: Churner(w, number)))

        def churn_ended(self, agent: Any) -> None:
            if agent in self.agents:
                self.agents.remove(agent)
            if self.running and not self.quitting:
                reactor.callLater(args.pause, self.churn)

        # paced traffic
        def tick(self) -> None:
            if self.running and self.agents:
                self.agents[self.next_agent % len(self.agents)].tick()
                self.next_agent += 1

        def note(self, text: str) -> None:
            if len(self.notes) < 5:
                self.notes.append(text)

        def failed(self, why: str) -> None:
            if self.role == "churner" and self.running and not self.quitting:
                # a churn that could not connect: counted, and the slot goes on
                self.counts["connect_failures"] += 1
                self.note(why)
                if self.counts["connect_failures"] > 100:
                    loadgen.emit(event="error", error=f"over 100 connection failures, last: {why}", pid=os.getpid())
                    self.quit()
                else:
                    reactor.callLater(1.0, self.churn)
                return
            if self.quitting:
                return
            loadgen.emit(event="error", error=why, pid=os.getpid())
            self.quit()

        def command(self, command: dict) -> None:
            cmd = command["cmd"]
            if cmd == "run":
                self.running = True
                reactor.callLater(max(command["end"] - time.time(), 0), self.end)
                if self.role == "churner":
                    for slot in range(args.sessions):
                        reactor.callLater(slot * 0.01, self.churn)
                elif self.role in ("caller", "publisher") and args.rate > 0:
                    self.clock = task.LoopingCall(self.tick)
                    self.clock.start(1.0 / args.rate, now=False)
            elif cmd == "totals":
                loadgen.emit(event="totals", pid=os.getpid(), counts=dict(self.counts))
            elif cmd == "probe" and self.role == "monitor" and self.agents:
                self.agents[0].probe()
            elif cmd == "quit":
                self.quit()

        def end(self) -> None:
            self.running = False
            if self.clock is not None and self.clock.running:
                self.clock.stop()
            self.reported = True
            loadgen.emit(event="result", pid=os.getpid(), counts=dict(self.counts), notes=self.notes)

        def deadline(self) -> None:
            if not self.quitting:
                loadgen.emit(event="error", error=f"deadline of {args.deadline} s reached", pid=os.getpid())
            self.quit()

        def quit(self) -> None:
            if self.quitting:
                return
            self.quitting = True
            self.running = False
            for agent in list(self.agents):
                if agent.link is not None:
                    agent.link.lose()
            reactor.callLater(0.2, reactor.stop)

    worker = SoakWorker()
    loadgen._control = loadgen.Control(worker)
    StandardIO(loadgen._control)
    reactor.callWhenRunning(worker.begin)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
