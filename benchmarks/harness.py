"""The harness shared by the network scenarios: processes, /proc sampling, measuring windows.

The relay (or an echo server) runs in its own process, and so does every load generator
worker (:mod:`benchmarks.loadgen`). The harness starts them, waits until every worker's
sessions are ready, tells them all to start, and measures a window of ``--seconds``
after ``--warmup`` seconds: the workers count what completed inside the window, the
harness samples the relay's CPU time (``/proc/PID/stat``, utime + stime) at both ends
of it, and the whole machine's busy share (``/proc/stat``). The relay's *capacity* is
the rate divided by the share of one core the relay used: what it would do with a full
core to itself (on 2 cores the load generators compete with the relay for CPU).

Only 127.0.0.1 is used, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
#: sessions per idle worker process (each connection is a file descriptor on both sides)
SESSIONS_PER_WORKER = 2500


# -- /proc -------------------------------------------------------------------------------------


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (its threads included)."""
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> float:
    """Seconds until 127.0.0.1:``port`` accepts a TCP connection (polled every 2 ms)."""
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.perf_counter() - started
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.002)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("PYTHONDEVMODE", None)
    return env


#: open files the harness asks for its processes (each connection is one on both sides)
OPEN_FILES = 1 << 18


def _raise_fd_limit() -> None:
    """In a process the harness starts: open files up to :data:`OPEN_FILES` where this
    process may raise its hard limit (root, or CAP_SYS_RESOURCE; never beyond the kernel's
    ``fs.nr_open``), else up to its hard limit. Only the harness's own processes change."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < OPEN_FILES:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                wanted = min(OPEN_FILES, int(f.read()))
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return
        except (OSError, ValueError):
            pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the server under test ---------------------------------------------------------------


class Server:
    """A relay or echo server process listening on 127.0.0.1 (or a router given by URL)."""

    def __init__(
        self, argv: list[str] | None, urls: dict[str, str], log_dir: Path, name: str, pid: int | None = None
    ) -> None:
        self.argv = argv
        self.urls = urls
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.pid = pid
        self.listening_seconds: float | None = None
        #: (py-spy executable, output file): sample the server during each window
        self.py_spy: tuple[str, str] | None = None
        self._windows = 0

    @property
    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv) if self.argv else "(external router)"

    def start(self, timeout: float = 30.0) -> None:
        if self.argv is None:
            return
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv,
            stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=_env(),
            preexec_fn=_raise_fd_limit,
        )
        self.pid = self.process.pid
        for url in self.urls.values():
            wait_port(urlparse(url).port, timeout, self.process)
        self.listening_seconds = time.perf_counter() - started

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid) if self.pid else None

    def system_cpu(self) -> float | None:
        return cpu_times(self.pid)[1] if self.pid else None

    def rss(self) -> int | None:
        return rss_bytes(self.pid) if self.pid else None

    def start_py_spy(self, seconds: float) -> subprocess.Popen | None:
        """py-spy sampling the server for ``seconds`` (Python frames holding the GIL, so
        time in system calls and waiting for a CPU is left out); output FILE, FILE.2, ..."""
        if self.py_spy is None or not self.pid:
            return None
        executable, output = self.py_spy
        self._windows += 1
        if self._windows > 1:
            output = f"{output}.{self._windows}"
        return subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(self.pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                "250",
                "--gil",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                output,
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path.with_suffix(".py-spy.log"), "ab"),
        )

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def relay_argv(kind: str, transport: str, ports: dict[str, int], args: argparse.Namespace) -> list[str]:
    """The command line of the server for ``kind`` (relay, embedded, echo)."""
    python = sys.executable
    profile = getattr(args, "profile", None)
    if getattr(args, "relay", "promisifier") == "xconn":
        return xconn_argv(kind, ports, args)
    use_script = kind != "relay" or getattr(args, "relay", "promisifier") == "script"
    if not use_script:
        argv = [python]
        if profile:
            argv += ["-m", "cProfile", "-o", profile]
        # the relay always has a WebSocket listener; RawSocket is served beside it
        ws_port = ports["ws"] if "ws" in ports else free_port()
        argv += ["-m", "promisifier", "relay", "--endpoint", f"tcp:{ws_port}:interface=127.0.0.1"]
        if "rs" in ports:
            argv += ["--rawsocket", f"tcp:{ports['rs']}:interface=127.0.0.1"]
        return argv
    argv = [python, "-m", "benchmarks.servers", "echo" if kind == "echo" else "relay"]
    if kind == "embedded":
        argv.append("--embedded")
    for name, port in ports.items():
        argv += [f"--{name}", f"tcp:{port}:interface=127.0.0.1"]
    if profile:
        argv += ["--profile", profile]
    return argv


#: the virtualenv with ``xconn`` installed, for ``--relay xconn``
XCONN_VENV = REPO / "benchmarks" / ".venv-xconn"


def xconn_argv(kind: str, ports: dict[str, int], args: argparse.Namespace) -> list[str]:
    """XConn's router (:mod:`benchmarks.xconn_router`), under the interpreter of its own
    virtualenv: WebSocket only, no profile."""
    if kind != "relay" or set(ports) != {"ws"}:
        raise SystemExit(f"--relay xconn: only the relay over WebSocket, not {kind} over {', '.join(ports)}")
    python = Path(getattr(args, "xconn_python", None) or XCONN_VENV / "bin" / "python")
    if not python.exists():
        raise SystemExit(
            f"--relay xconn needs {python}: python3 -m venv {XCONN_VENV} && {XCONN_VENV}/bin/pip install xconn"
        )
    return [str(python), str(REPO / "benchmarks" / "xconn_router.py"), "--port", str(ports["ws"])]


@contextmanager
def server(kind: str, transport: str, args: argparse.Namespace, log_dir: Path) -> Iterator[Server]:
    """The server under test for one transport, started and (at the end) stopped."""
    if args.url:
        scheme = urlparse(args.url).scheme
        if (transport == "ws") != (scheme == "ws"):
            raise SystemExit(f"--url {args.url} is not a {transport} URL (ws://host:port/path or rs://host:port)")
        external = Server(None, {transport: args.url}, log_dir, "external", pid=args.relay_pid)
        yield external
        return
    ports = {transport: free_port()}
    urls = {"ws": f"ws://127.0.0.1:{ports['ws']}/ws"} if transport == "ws" else {"rs": f"rs://127.0.0.1:{ports['rs']}"}
    name = f"{kind}-{transport}-{os.getpid()}"
    running = Server(relay_argv(kind, transport, ports, args), urls, log_dir, name)
    if getattr(args, "py_spy", None):
        running.py_spy = (args.py_spy_bin, f"{args.py_spy}.{kind}-{transport}")
    try:
        running.start()
        yield running
    finally:
        running.stop()


# -- load generator workers ------------------------------------------------------------------


class Worker:
    """One :mod:`benchmarks.loadgen` process, driven with JSON lines."""

    def __init__(self, role: str, url: str, log_dir: Path, **options: Any) -> None:
        argv = [sys.executable, "-m", "benchmarks.loadgen", "--role", role, "--url", url]
        options.setdefault("deadline", 600)
        for key, value in options.items():
            if value is True:
                argv.append(f"--{key.replace('_', '-')}")
            elif value is not None and value is not False:
                argv += [f"--{key.replace('_', '-')}", str(value)]
        self.role = role
        self.argv = argv
        self.log_path = log_dir / f"worker-{role}-{os.getpid()}.log"
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "ab"),
            cwd=REPO,
            env=_env(),
            preexec_fn=_raise_fd_limit,
        )
        self._buffer = b""
        self.ready: dict | None = None
        self.result: dict | None = None

    def send(self, **command: Any) -> None:
        try:
            self.process.stdin.write(json.dumps(command).encode() + b"\n")  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass

    def read_event(self, timeout: float) -> dict:
        """The next JSON line from the worker; raises RuntimeError on error, exit or timeout."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        fd = stdout.fileno()  # type: ignore[union-attr]
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.role} worker: no answer within {timeout} s ({self.log_path})")
                if selector.select(left):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        raise RuntimeError(f"{self.role} worker exited ({self.process.wait()}); see {self.log_path}")
                    self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        event = json.loads(line)
        if event.get("event") == "error":
            raise RuntimeError(f"{self.role} worker: {event['error']} (log: {self.log_path})")
        return event

    def wait_ready(self, timeout: float) -> dict:
        self.ready = self.read_event(timeout)
        return self.ready

    def wait_result(self, timeout: float) -> dict:
        while True:
            event = self.read_event(timeout)
            if event.get("event") == "result":
                self.result = event
                return event

    def cpu(self) -> float:
        try:
            return cpu_seconds(self.process.pid)
        except OSError:
            return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.send(cmd="quit")
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


@contextmanager
def workers() -> Iterator[list[Worker]]:
    """A list to start workers into; every one is stopped at the end."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def measure(relay: Server, all_workers: list[Worker], warmup: float, seconds: float) -> dict:
    """Start every worker's traffic and measure one window; fires the workers' results.

    Returns the relay's CPU share during the window, the machine's busy share, the
    workers' CPU share, and each worker's result (counts inside the window).
    """
    t0 = time.time() + warmup + 0.05
    t1 = t0 + seconds
    # passive roles first, so that callees and subscribers count from the start
    order = sorted(all_workers, key=lambda w: w.role in ("caller", "publisher", "echo"))
    for worker in order:
        worker.send(cmd="run", start=t0, end=t1)
    time.sleep(max(t0 - time.time(), 0))
    spy = relay.start_py_spy(seconds)
    relay_cpu0, machine0, workers0 = relay.cpu(), machine_cpu(), sum(w.cpu() for w in all_workers)
    relay_sys0 = relay.system_cpu()
    wall0 = time.time()
    time.sleep(max(t1 - time.time(), 0))
    relay_cpu1, machine1, workers1 = relay.cpu(), machine_cpu(), sum(w.cpu() for w in all_workers)
    relay_sys1 = relay.system_cpu()
    wall = time.time() - wall0
    results = [dict(worker.wait_result(seconds + warmup + 30), role=worker.role) for worker in all_workers]
    if spy is not None:
        try:
            spy.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
    busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1)
    return {
        "window_s": round(wall, 4),
        "relay_cpu": None if relay_cpu0 is None else round((relay_cpu1 - relay_cpu0) / wall, 4),
        #: the part of relay_cpu spent in the kernel (system calls: socket reads and writes, epoll)
        "relay_cpu_system": None if relay_sys0 is None else round((relay_sys1 - relay_sys0) / wall, 4),
        "workers_cpu": round((workers1 - workers0) / wall, 4),
        "machine_busy": round(busy, 4),
        "loadavg": loadavg(),
        "results": results,
    }


def measure_runs(relay: Server, all_workers: list[Worker], args: argparse.Namespace) -> list[dict]:
    """``args.repeat`` windows (see :func:`measure`) with the same processes."""
    windows = []
    for index in range(getattr(args, "repeat", 1)):
        if index:
            time.sleep(0.3)  # the last window's calls in flight come back
        windows.append(measure(relay, all_workers, args.warmup, args.seconds))
    return windows


def summarize(windows: list[dict], rate_of: Any) -> dict:
    """Median rate, relay CPU and capacity over windows; ``rate_of(window)`` gives a rate."""
    runs = []
    for window in windows:
        rate = rate_of(window)
        cpu = window["relay_cpu"]
        runs.append(
            {
                "rate": round(rate, 1),
                "relay_cpu": cpu,
                "capacity": round(rate / cpu, 1) if cpu else None,
                **{k: window[k] for k in ("window_s", "relay_cpu_system", "workers_cpu", "machine_busy", "loadavg")},
                **({"call_errors": window["call_errors"]} if window.get("call_errors") else {}),
            }
        )
    capacities = [run["capacity"] for run in runs if run["capacity"] is not None]
    return {
        "rate": statistics.median(run["rate"] for run in runs),
        "relay_cpu": statistics.median(run["relay_cpu"] for run in runs) if capacities else None,
        "capacity": statistics.median(capacities) if capacities else None,
        "runs": runs,
    }


def rate_figures(prefix: str, summary: dict, unit: str) -> list[dict]:
    """The RESULT entries for a rate: the rate, the relay's CPU share and its capacity
    (medians over the runs; every run in the entry of the rate)."""
    figures = [{"name": f"{prefix}.rate", "value": round(summary["rate"], 1), "unit": unit, "runs": summary["runs"]}]
    if summary["capacity"] is not None:
        figures.append({"name": f"{prefix}.relay_cpu", "value": summary["relay_cpu"], "unit": "cores"})
        figures.append(
            {"name": f"{prefix}.capacity", "value": round(summary["capacity"], 1), "unit": f"{unit}_per_relay_core"}
        )
    return figures


def percentiles(values_us: list[float]) -> dict[str, float]:
    ordered = sorted(values_us)
    if not ordered:
        return {}

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {
        "p50": at(50),
        "p90": at(90),
        "p99": at(99),
        "mean": statistics.fmean(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
    }


# -- a blocking WAMP client for start-up timing ------------------------------------------------


def hello_over_websocket(port: int, path: str = "/ws", timeout: float = 10.0) -> float:
    """Seconds for a WebSocket opening handshake plus HELLO -> WELCOME (wamp.2.json)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed during the WebSocket handshake")
            response += chunk
        if not response.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"WebSocket handshake refused: {response[:100]!r}")
        rest = response.split(b"\r\n\r\n", 1)[1]
        payload = b'[1,"realm1",{"roles":{"caller":{}}}]'
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes((0x81, 0x80 | len(payload))) + mask + masked)
        while len(rest) < 2:
            rest += sock.recv(4096)
        length = rest[1] & 0x7F
        header = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        while len(rest) < header:
            rest += sock.recv(4096)
        if length == 126:
            length = int.from_bytes(rest[2:4], "big")
        elif length == 127:
            length = int.from_bytes(rest[2:10], "big")
        while len(rest) < header + length:
            rest += sock.recv(65536)
        message = json.loads(rest[header : header + length])
        if message[0] != 2:
            raise RuntimeError(f"no WELCOME: {message}")
    return time.perf_counter() - started


# -- arguments shared by the network scenarios -----------------------------------------------


def csv(kind: type = str):
    def parse(text: str) -> list:
        return [kind(part) for part in text.split(",") if part.strip()]

    return parse


def add_common_arguments(
    parser: argparse.ArgumentParser, transports: str = "ws,rs", serializers: str = "msgpack,json"
) -> None:
    parser.add_argument(
        "--transports", type=csv(), default=csv()(transports), help=f"ws and/or rs (default {transports})"
    )
    parser.add_argument(
        "--serializers", type=csv(), default=csv()(serializers), help=f"msgpack and/or json (default {serializers})"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the measured window (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of traffic before the window (default 1)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="windows per case with the same processes; medians are reported (default 1)",
    )
    parser.add_argument(
        "--relay",
        choices=("promisifier", "script", "xconn"),
        default="promisifier",
        help="relay process: `python -m promisifier relay` (default; --rawsocket for RawSocket), the benchmarks' "
        "`python -m benchmarks.servers relay` (a bare Router, no relay service), or XConn's router "
        "(benchmarks/xconn_router.py, WebSocket only; see --xconn-python)",
    )
    parser.add_argument(
        "--xconn-python",
        help="with --relay xconn: the interpreter of a virtualenv with xconn installed "
        "(default benchmarks/.venv-xconn/bin/python)",
    )
    parser.add_argument(
        "--url", help="measure this router instead of starting one (ws://host:port/path or rs://host:port)"
    )
    parser.add_argument("--relay-pid", type=int, help="with --url: the router's pid, to sample its CPU")
    parser.add_argument(
        "--lean",
        action="store_true",
        help="callers and callees over WebSocket use the load generator's minimal client instead of autobahn's",
    )
    parser.add_argument("--profile", help="run the relay under cProfile and write its stats to this file")
    parser.add_argument(
        "--py-spy",
        help="sample the relay with py-spy during each window; collapsed stacks go to PREFIX.KIND-TRANSPORT[.N] "
        "(summarize with python -m benchmarks.stacks)",
        metavar="PREFIX",
    )
    parser.add_argument("--py-spy-bin", default="py-spy", help="the py-spy executable (default: py-spy on PATH)")
    parser.add_argument(
        "--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "promisifier-benchmarks", help="process logs"
    )


def check_common(args: argparse.Namespace) -> None:
    for transport in args.transports:
        if transport not in ("ws", "rs"):
            raise SystemExit(f"--transports: ws or rs, not {transport!r}")
    for serializer in args.serializers:
        if serializer not in ("msgpack", "json"):
            raise SystemExit(f"--serializers: msgpack or json, not {serializer!r}")
    if args.seconds <= 0 or args.warmup < 0 or args.repeat < 1:
        raise SystemExit("--seconds and --repeat must be > 0 and --warmup >= 0")
    if args.url and len(args.transports) != 1:
        args.transports = ["rs" if args.url.startswith("rs://") else "ws"]
    args.log_dir.mkdir(parents=True, exist_ok=True)


def setup_of(args: argparse.Namespace, **more: Any) -> dict:
    setup = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("json",)}
    setup["loadavg_before"] = loadavg()
    setup.update(more)
    return setup
