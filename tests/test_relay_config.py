"""The relay's TOML configuration: loading and checking (in process and through the real
command), the example file, the built-in default, and reloading (RelayService.reload, and
SIGHUP to a real ``twistd -n promisifier-relay --config`` process)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor, threads

from promisifier.relay.command_line import RelayOptions
from promisifier.relay.relay_config import (
    ConfigError,
    EndpointConfig,
    ListenerConfig,
    RelayConfig,
    default_config,
    load_config,
    parse_config,
)
from promisifier.relay.service import RelayService, make_service
from promisifier.router import RouterConfig
from promisifier.router.auth import Principal
from promisifier.router.authz import Permission
from tests.support import connect_autobahn, leave_and_wait, within
from tests.test_forwarded_for import connect_with_header, own_peer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TWISTD = Path(sys.executable).with_name("twistd")
#: bound on every wait for a process (seconds)
WAIT = 30.0


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "relay.toml", text))
    return info.value.errors


# -- loading and checking ------------------------------------------------------------------


def test_empty_file_is_the_builtin_default(tmp_path):
    config = load_config(write(tmp_path / "relay.toml", ""))
    assert config == default_config() == RelayConfig()
    assert config.listeners == (ListenerConfig("tcp:8080:interface=127.0.0.1", "/ws"),)
    assert [realm.name for realm in config.router.realms] == ["realm1"]
    assert config.router.realms[0].roles is None
    assert config.warnings() == []


def test_without_config_the_options_give_the_builtin_default():
    options = RelayOptions()
    options.parseOptions([])
    service = make_service(options)
    assert service.config == default_config()
    assert service.config.router == RouterConfig(realms=("realm1",), max_message_size=16 * 1024 * 1024)
    [listener] = service.listeners
    assert (listener.config.endpoint, listener.config.path, listener.config.auth) == (
        "tcp:8080:interface=127.0.0.1",
        "/ws",
        None,
    )
    assert service.config_file is None and not service.handle_sighup


def test_the_example_file_loads_with_every_key(tmp_path, monkeypatch):
    pytest.importorskip("OpenSSL", reason="the example has a TLS listener: needs pyOpenSSL (twisted[tls])")
    from tests.test_tls import make_certificate

    shutil.copy(EXAMPLES / "relay.toml", tmp_path / "relay.toml")
    make_certificate(tmp_path / "certs")  # the example's TLS listener reads certs/relay.{key,crt}
    (tmp_path / "browser").mkdir()  # the example's static folder (examples/browser beside it)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # its handler, authenticator and authorizer
    config = load_config(tmp_path / "relay.toml")

    plain, tls, unix, rawsocket = config.listeners
    assert plain.endpoint == "tcp:8080:interface=127.0.0.1" and not plain.secure
    assert (plain.path, plain.serializers, plain.max_message_size) == ("/ws", ("json", "msgpack"), 1048576)
    assert plain.auth.methods == ("anonymous", "ticket", "wampcra", "cryptosign", "scram")
    assert plain.auth.cryptosign["device-1"].role == "user"
    assert plain.auth.cryptosign_authenticator == "relay_auth.check_key"
    dave = plain.auth.scram["dave"].credential
    assert (dave.kdf, dave.iterations, dave.memory, len(dave.stored_key)) == ("argon2id13", 3, 65536, 32)
    assert dave.keys("autobahn") is not None
    assert plain.auth.tickets == {"alice": Principal("alice", "user", "alice-secret")}
    assert plain.auth.ticket_authenticator == "relay_auth.check_ticket"
    assert plain.auth.wampcra["salted"] == Principal("salted", "backend", "salted-secret", "pepper", 1000, 32)
    (rpc,) = plain.rpc_websockets
    assert (rpc.path, rpc.realm, rpc.uri_prefix, rpc.call_timeout, rpc.events) == (
        "/rpc",
        "realm1",
        "com.example.",
        10000,
        ("news", "ticks"),
    )
    assert (plain.http.path, plain.http.realm, plain.http.call_timeout, plain.http.timestamp_delta_limit) == (
        "/http",
        "realm1",
        10000,
        300.0,
    )
    assert plain.http.keys["backend"].role == "backend"
    (static,) = plain.static
    assert (static.path, static.directory) == ("/app", str(tmp_path / "browser"))
    assert tls.secure and tls.auth.methods == ("ticket",)
    assert tls.files == (str(tmp_path / "certs" / "relay.crt"), str(tmp_path / "certs" / "relay.key"))
    assert unix.endpoint == f"unix:{tmp_path / 'relay.sock'}"
    assert (rawsocket.transport, rawsocket.endpoint, rawsocket.web_paths()) == (
        "rawsocket",
        "tcp:8081:interface=127.0.0.1",
        {},
    )

    realm1, sandbox = config.router.realms
    assert [role.name for role in realm1.roles] == ["anonymous", "user", "backend"]
    assert realm1.roles[0].permissions == (Permission("com.example.public.", "prefix", call=True, subscribe=True),)
    assert sandbox.strict_uris and sandbox.roles[0].authorizer == "relay_auth.authorize"
    assert config.endpoints == (EndpointConfig("/websockets/echo", "echo_endpoint"),)
    assert config.router.trusted_proxies == ("127.0.0.1", "::1", "10.0.0.0/8")
    assert (config.router.max_message_size, config.router.open_handshake_timeout, config.router.hello_timeout) == (
        16777216,
        10.0,
        10.0,
    )
    assert config.router.limits.max_sessions == 100000
    assert config.warnings() == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("listners = []", "listners: unknown key (value [] (an array)); expected one of: listeners, realms"),
        (
            """
            [[listeners]]
            endpoint = "tcp:0"
            [listeners.auth]
            methods = ["ticket"]
            [listeners.auth.ticket.principals.alice]
            ticket = "secret"
            role = 5
            """,
            "listeners[0].auth.ticket.principals.alice.role: expected a non-empty string, got 5 (an integer)",
        ),
        (
            """
            [[listeners]]
            [listeners.auth]
            tikcet = {}
            """,
            "listeners[0].auth.tikcet: unknown key",
        ),
        (
            """
            [[listeners]]
            endpoint = "ssl:0:privateKey=nowhere/key.pem"
            """,
            "listeners[0].endpoint: 'ssl:0:privateKey=nowhere/key.pem': privateKey file",
        ),
        ('[[listeners]]\nendpoint = "udp:53"', "listeners[0].endpoint: expected an endpoint string of type tcp, tcp6"),
        ('[[listeners]]\nendpoint = "tcp:eighty"', "listeners[0].endpoint: 'tcp:eighty' is not a usable endpoint"),
        ('[[listeners]]\npath = "ws"', "listeners[0].path: expected a URL path starting with '/', got 'ws'"),
        ('[[listeners]]\nserializers = ["xml"]', "listeners[0].serializers[0]: expected one of 'json', 'msgpack'"),
        (
            '[[listeners]]\nendpoint = "tcp:1"\n[[listeners]]\nendpoint = "tcp:1"',
            "listeners[1].endpoint: 'tcp:1' is already used by listeners[0]",
        ),
        (
            "[[listeners]]\nauth.methods = ['ticket']",
            "listeners[0].auth.methods: 'ticket' is enabled, but there are no",
        ),
        (
            "[[listeners]]\nauth.wampcra.users.bob = {secret = 's', role = 'r', iterations = 5}",
            "users.bob.iterations: 5 (an integer) given without a salt",
        ),
        (
            "[[listeners]]\nauth.methods = ['cryptosign']",
            "listeners[0].auth.methods: 'cryptosign' is enabled, but there are no cryptosign.principals",
        ),
        (
            "[[listeners]]\nauth.cryptosign.principals.d = {role = 'r', authorized_keys = ['abc']}",
            "listeners[0].auth.cryptosign.principals.d.authorized_keys[0]: expected an Ed25519 public key as 64 hex",
        ),
        (
            "[[listeners]]\nauth.cryptosign.principals.d = {role = 'r'}",
            "listeners[0].auth.cryptosign.principals.d.authorized_keys: missing",
        ),
        (
            f"[[listeners]]\nauth.cryptosign.principals.d = {{role = 'r', authorized_keys = ['{'ab' * 32}']}}\n"
            f"auth.cryptosign.principals.e = {{role = 'r', authorized_keys = ['{'AB' * 32}']}}",
            "listeners[0].auth.cryptosign.principals.e.authorized_keys[0]: this key is already authorized for 'd'",
        ),
        ("[[listeners]]\nauth.methods = ['scram']", "listeners[0].auth.methods: 'scram' is enabled, but there are no"),
        (
            "[[listeners]]\nauth.scram.principals.s = {role = 'r', kdf = 'scrypt', iterations = 1}",
            "listeners[0].auth.scram.principals.s.kdf: expected one of 'argon2id13', 'pbkdf2', 'argon2id-13'",
        ),
        (
            "[[listeners]]\nauth.scram.principals.s = {role = 'r', kdf = 'pbkdf2', iterations = 9, salt = 'c2FsdA=='}",
            "listeners[0].auth.scram.principals.s.stored-key: missing; expected a base64 string",
        ),
        (
            "[[listeners]]\nauth.scram.principals.s = {role = 'r', kdf = 'argon2id13', iterations = 1, salt = 'x'}",
            "listeners[0].auth.scram.principals.s.memory: missing; argon2id13 needs the memory cost in KiB",
        ),
        (
            "[[listeners]]\nauth.scram.principals.s = {role = 'r', kdf = 'pbkdf2', iterations = 1, salt = '%%'}",
            "listeners[0].auth.scram.principals.s.salt: expected a base64 string, got '%%'",
        ),
        (
            "[[listeners]]\nlimits.max_message_size = 0",
            "listeners[0].limits.max_message_size: expected an integer >= 1, got 0",
        ),
        (
            "[limits]\nhello_timeout = 'soon'",
            "limits.hello_timeout: expected a number of seconds > 0, got 'soon' (a string)",
        ),
        ("[limits]\nmax_sessions = true", "limits.max_sessions: expected an integer >= 1, got True (a boolean)"),
        ("trusted_proxies = ['10.0.0.0/33']", 'trusted_proxies[0]: expected an IP address, a CIDR network or "unix"'),
        ("[[realms]]\nstrict_uris = true", "realms[0].name: missing; expected a non-empty string"),
        (
            "[[realms]]\nname = 'a'\ncancel_reply = 'never'",
            "realms[0].cancel_reply: expected one of 'always', 'kill_only', got 'never'",
        ),
        ("[[realms]]\nname = 'a'\n[[realms]]\nname = 'a'", "realms[1].name: realm 'a' is already defined at realms[0]"),
        (
            "[[realms]]\nname = 'a'\n[[realms.roles]]\nname = 'r'\n[[realms.roles.permissions]]\nuri = 'com.x'\nmatch = 'regex'",
            "realms[0].roles[0].permissions[0].match: expected one of 'exact', 'prefix', 'wildcard', got 'regex'",
        ),
        (
            "[[realms]]\nname = 'a'\n[[realms.roles]]\nname = 'r'\n[[realms.roles.permissions]]\nuri = 'com x'",
            "realms[0].roles[0].permissions[0].uri: expected a URI or URI pattern for match 'prefix', got 'com x'",
        ),
        (
            "[[realms]]\nname = 'a'\n[[realms.roles]]\nname = 'r'\nauthorizer = 'no_such_module_here.fn'",
            "realms[0].roles[0].authorizer: 'no_such_module_here.fn' cannot be imported: ModuleNotFoundError",
        ),
        (
            "[[endpoints]]\npath = '/ws'\nhandler = 'json'",
            "endpoints[0].path: '/ws' overlaps '/ws' (the default listener)",
        ),
        ("[[endpoints]]\npath = '/e'\nhandler = 'json.nope'", "endpoints[0].handler: 'json.nope' cannot be imported"),
        ("[[endpoints]]\nhandler = 'json'", "endpoints[0].path: missing; expected a URL path starting with '/'"),
        (
            "[[endpoints]]\npath = '/e'\nhandler = 'json'",
            "endpoints[0].handler: 'json' cannot serve as a handler: 'json' has none of on_open",
        ),
        ("listeners = 5", "listeners: expected an array of tables, got 5 (an integer)"),
    ],
)
def test_errors_name_the_key_the_value_and_what_was_expected(tmp_path, text, expected):
    errors = errors_of(text, tmp_path)
    assert any(expected in error for error in errors), errors


def test_every_error_is_reported_at_once_and_bad_toml_names_the_line(tmp_path):
    errors = errors_of("nope = 1\n[limits]\nmax_message_size = 'big'\n[[realms]]\nname = 3\n", tmp_path)
    assert [error.split(":", 1)[0] for error in errors] == ["nope", "limits.max_message_size", "realms[0].name"]
    [error] = errors_of("[[listeners]\n", tmp_path)
    assert error.startswith("not valid TOML:") and "line 1" in error
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert "cannot read the file" in str(info.value)


def test_anonymous_access_on_a_public_address_is_warned_about():
    def warnings(text: str) -> list[str]:
        return parse_config(__import__("tomllib").loads(textwrap.dedent(text))).warnings()

    public_open = warnings('[[listeners]]\nendpoint = "tcp:8080"')
    assert (
        len(public_open) == 1
        and "listeners[0] (tcp:8080) accepts anonymous clients on a non-loopback" in public_open[0]
    )
    assert "'realm1'" in public_open[0]
    assert warnings('[[listeners]]\nendpoint = "tcp:8080:interface=127.0.0.1"') == []
    assert warnings('[[listeners]]\nendpoint = "tcp6:8080:interface=\\\\:\\\\:1"') == []
    assert (
        warnings('[[listeners]]\nendpoint = "tcp:8080"\n[[realms]]\nname = "r"\nroles = [{name = "anonymous"}]') == []
    )
    with_tickets = '[[listeners]]\nendpoint = "tcp:8080"\nauth = {methods = ["ticket"], ticket.principals.a = {ticket = "t", role = "user"}}'
    assert warnings(with_tickets) == []
    undefined_role = warnings(with_tickets + '\n[[realms]]\nname = "r"\nroles = [{name = "admin"}]')
    assert undefined_role == [
        "listeners[0].auth.ticket.principals.a.role: role 'user' is defined in no realm; its sessions cannot join"
    ]


# -- the real command ------------------------------------------------------------------------


def subprocess_env(*extra_paths: Path) -> dict[str, str]:
    """The environment of child processes: this checkout first on sys.path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), *map(str, extra_paths), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def plugin_path(tmp_path: Path) -> Path:
    """A folder that makes twistd see the plugin from this checkout even when the package
    is not installed (twistd looks for ``twisted/plugins`` folders on sys.path)."""
    root = tmp_path / "plugin-path"
    plugins = root / "twisted" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / "promisifier_relay.py"
    if not target.exists():
        shutil.copy(REPO / "twisted_plugins" / "promisifier_relay.py", target)
    return root


def twistd(tmp_path: Path) -> list[str]:
    if not TWISTD.exists():
        pytest.fail(f"no twistd next to {sys.executable}: is Twisted installed in this environment?")
    return [str(TWISTD), "-n", "--pidfile=", "promisifier-relay"]


PYTHON_M = [sys.executable, "-m", "promisifier", "relay"]


@pytest.mark.process
def test_command_line_checks(tmp_path, free_port):
    bad = {
        "bad_toml": ("[[listeners]\nendpoint = 'tcp:0'\n", ["not valid TOML", "line 1"]),
        "unknown_key": (
            "[[listeners]]\nendpoint = 'tcp:0'\n[listeners.auth]\nmethod = ['anonymous']\n",
            ["listeners[0].auth.method: unknown key", "expected one of: methods"],
        ),
        "wrong_type": (
            "[[listeners]]\nendpoint = 'tcp:0'\nauth.methods = ['ticket']\n"
            "auth.ticket.principals.alice = {ticket = 'secret', role = 5}\n",
            ["listeners[0].auth.ticket.principals.alice.role: expected a non-empty string, got 5 (an integer)"],
        ),
        "missing_certificate": (
            "[[listeners]]\nendpoint = 'ssl:0:privateKey=key.pem:certKey=cert.pem'\n",
            ["listeners[0].endpoint:", f"privateKey file '{tmp_path / 'key.pem'}' does not exist"],
        ),
    }
    good = write(tmp_path / "good.toml", "[[listeners]]\nendpoint = 'tcp:0:interface=127.0.0.1'\n")
    runs = {}
    for name, (text, _) in bad.items():
        path = write(tmp_path / f"{name}.toml", text)
        runs[name] = [*PYTHON_M, "--check-config", str(path)]
    runs["good"] = [*PYTHON_M, "--check-config", str(good)]
    # The relay itself refuses a bad file before listening, with twistd and with python -m.
    wrong = write(
        tmp_path / "wrong_start.toml",
        f"[[listeners]]\nendpoint = 'tcp:{free_port}:interface=127.0.0.1'\n[[realms]]\nname = 'r'\ncancel_reply = 'never'\n",
    )
    runs["twistd_start"] = [*twistd(tmp_path), "--config", str(wrong)]
    runs["python_start"] = [*PYTHON_M, "--config", str(wrong)]
    runs["mixed"] = [*PYTHON_M, "--config", str(good), "--endpoint", "tcp:1"]
    env = subprocess_env(plugin_path(tmp_path))
    started = {
        name: subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in runs.items()
    }
    results = {name: (process.communicate(timeout=WAIT), process.returncode) for name, process in started.items()}

    for name, (_, expected) in bad.items():
        (out, err), code = results[name]
        assert code == 1, (name, out, err)
        for text in expected:
            assert text in err, (name, err)
        assert "ok" not in out
    (out, err), code = results["good"]
    assert (code, out.strip()) == (0, "ok"), err
    for name in ("twistd_start", "python_start"):
        (out, err), code = results[name]
        assert code != 0, (name, out, err)
        assert "realms[0].cancel_reply: expected one of 'always', 'kill_only', got 'never'" in err, (name, err)
        assert "serving" not in out + err
    (out, err), code = results["mixed"]
    assert code == 2 and "--endpoint cannot be combined with --config" in err, err


# -- reloading ----------------------------------------------------------------------------------


def relay_toml(endpoint: str, *, call: bool, path: str = "/ws", extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""
        trusted_proxies = ["127.0.0.1"]
        [[listeners]]
        endpoint = "{endpoint}"
        path = "{path}"

        [[realms]]
        name = "realm1"
        [[realms.roles]]
        name = "anonymous"
        [[realms.roles.permissions]]
        uri = "com.example."
        call = {str(call).lower()}
        register = true
        [[realms.roles.permissions]]
        uri = "wamp."
        call = true
        """
        )
        + extra
    )


def connect_refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest_twisted.inlineCallbacks
def call_result(caller, procedure: str = "com.example.proc"):
    """The call's result, or the error URI it failed with."""
    try:
        return (yield within(caller.call(procedure)))
    except ApplicationError as error:
        return error.error


@pytest_twisted.inlineCallbacks
def test_reload_applies_a_valid_file_keeps_the_old_one_for_an_invalid_file_and_rebinds_listeners(tmp_path, free_port):
    config_file = write(tmp_path / "relay.toml", relay_toml("tcp:0:interface=127.0.0.1", call=True))
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    sessions = []
    try:
        first_port = service.port.getHost().port
        callee = yield connect_autobahn(service.url)
        caller = yield connect_autobahn(service.url, serializer="msgpack")
        sessions += [callee, caller]
        yield within(callee.register(lambda: "ok", "com.example.proc"))
        assert (yield call_result(caller)) == "ok"

        # a permission changes under the live session
        write(config_file, relay_toml("tcp:0:interface=127.0.0.1", call=False))
        assert (yield within(service.reload())) is True
        assert (yield call_result(caller)) == "wamp.error.not_authorized"
        assert service.port.getHost().port == first_port  # same endpoint: same port

        # an invalid file is refused; the running configuration stays
        running = service.config
        write(config_file, relay_toml("tcp:0:interface=127.0.0.1", call=True, extra="[limits]\nhello_timeout = -1\n"))
        assert (yield within(service.reload())) is False
        assert service.config is running
        assert (yield call_result(caller)) == "wamp.error.not_authorized"

        # the same endpoint with another path: the port stays, new connections use the new path
        write(config_file, relay_toml("tcp:0:interface=127.0.0.1", call=True, path="/wamp"))
        assert (yield within(service.reload())) is True
        assert service.url == f"ws://127.0.0.1:{first_port}/wamp"
        via_new_path = yield connect_autobahn(service.url)
        sessions.append(via_new_path)
        assert (yield call_result(via_new_path)) == "ok"

        # another endpoint: the old port is closed, the new one listens; live sessions go on
        write(config_file, relay_toml(f"tcp:{free_port}:interface=127.0.0.1", call=True))
        assert (yield within(service.reload())) is True
        assert service.url == f"ws://127.0.0.1:{free_port}/ws"
        assert connect_refused(first_port)
        assert (yield call_result(caller)) == "ok"
        newcomer = yield connect_with_header(service.url, "203.0.113.9")  # trusted_proxies from the file
        sessions.append(newcomer)
        assert (yield own_peer(newcomer)) == "tcp4:203.0.113.9"
        assert (yield call_result(newcomer)) == "ok"
    finally:
        for session in sessions:
            yield leave_and_wait(session)
        yield service.stopService()
    assert connect_refused(free_port)


class RelayProcess:
    """A relay child process whose output can be waited for with Deferreds."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""
        self._waiters: list[tuple[str, defer.Deferred]] = []
        self._ended = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            reactor.callFromThread(self._received, line)
        reactor.callFromThread(self._end)

    def _received(self, line: str) -> None:
        self.output += line
        for waiter in list(self._waiters):
            if waiter[0] in self.output:
                self._waiters.remove(waiter)
                waiter[1].callback(None)

    def _end(self) -> None:
        self._ended = True
        waiters, self._waiters = self._waiters, []
        for text, waiting in waiters:
            waiting.errback(AssertionError(f"{text!r} never appeared; the process ended:\n{self.output}"))

    def wait_for(self, text: str) -> defer.Deferred:
        """Fires once ``text`` appears in the output; fails if the process ends first."""
        if text in self.output:
            return defer.succeed(None)
        if self._ended:
            return defer.fail(AssertionError(f"{text!r} never appeared; the process ended:\n{self.output}"))
        waiting = defer.Deferred()
        self._waiters.append((text, waiting))
        return within(waiting, WAIT)

    def stop(self) -> defer.Deferred:
        """SIGTERM, then the exit code (waited for in a thread)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return threads.deferToThread(self.popen.wait, WAIT)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(WAIT)


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_sighup_reloads_a_twistd_relay_under_a_live_session(tmp_path, free_port):
    endpoint = f"tcp:{free_port}:interface=127.0.0.1"
    config_file = write(tmp_path / "relay.toml", relay_toml(endpoint, call=True))
    relay = RelayProcess(
        [*twistd(tmp_path), "--config", str(config_file)], cwd=tmp_path, env=subprocess_env(plugin_path(tmp_path))
    )
    sessions = []
    try:
        url = f"ws://127.0.0.1:{free_port}/ws"
        yield relay.wait_for(f"serving {url}")
        callee = yield connect_autobahn(url)
        caller = yield connect_autobahn(url, serializer="msgpack")
        sessions += [callee, caller]
        yield within(callee.register(lambda: "ok", "com.example.proc"))
        assert (yield call_result(caller)) == "ok"

        write(config_file, relay_toml(endpoint, call=False))
        relay.popen.send_signal(signal.SIGHUP)
        yield relay.wait_for("configuration reloaded from")
        assert (yield call_result(caller)) == "wamp.error.not_authorized"

        # an invalid file: logged, and the running configuration stays
        write(config_file, relay_toml(endpoint, call=True, extra="[limits]\nmax_message_size = 'lots'\n"))
        relay.popen.send_signal(signal.SIGHUP)
        yield relay.wait_for("configuration not reloaded")
        assert "limits.max_message_size: expected an integer >= 1, got 'lots'" in relay.output
        assert (yield call_result(caller)) == "wamp.error.not_authorized"

        for session in sessions:
            yield leave_and_wait(session)
        sessions = []
        code = yield relay.stop()
        assert code == 0, relay.output
    finally:
        for session in sessions:
            yield leave_and_wait(session)
        relay.kill()


TICKET_TOML = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"
auth.methods = ["ticket"]
auth.ticket.principals.alice = {{ticket = "{ticket}", role = "user"}}
"""


@pytest_twisted.inlineCallbacks
def test_reload_changes_the_principals_of_a_listener_that_keeps_its_port(tmp_path):
    from tests.auth_support import connect_auth, leave

    config_file = write(tmp_path / "relay.toml", TICKET_TOML.format(ticket="old-ticket"))
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    try:
        port = service.port
        alice = yield connect_auth(service.url, authmethods=["ticket"], authid="alice", secret="old-ticket")
        assert (alice.join_details.authid, alice.join_details.authrole) == ("alice", "user")

        write(config_file, TICKET_TOML.format(ticket="new-ticket"))
        assert (yield within(service.reload())) is True
        assert service.port is port
        refused = yield connect_auth(
            service.url, authmethods=["ticket"], authid="alice", secret="old-ticket", expect="aborted"
        )
        assert refused.abort.reason in ("wamp.error.authentication_failed", "wamp.error.not_authorized")
        again = yield connect_auth(service.url, authmethods=["ticket"], authid="alice", secret="new-ticket")
        assert alice.is_attached()  # the session that joined with the old ticket stays
        yield leave(again)
        yield leave(alice)
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_listener_serializers_and_message_size_limit(tmp_path):
    from autobahn.twisted.websocket import WebSocketClientFactory
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from tests.test_plain_endpoints import PlainClient

    config_file = write(
        tmp_path / "relay.toml",
        """
        [[listeners]]
        endpoint = "tcp:0:interface=127.0.0.1"
        serializers = ["msgpack"]
        limits.max_message_size = 1024
        """,
    )
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    try:
        # a client that speaks only JSON is refused at the upgrade
        factory = WebSocketClientFactory(service.url, protocols=["wamp.2.json"])
        factory.protocol = PlainClient
        client = yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", service.port.getHost().port).connect(factory))
        with pytest.raises(ConnectionError):
            yield within(client.opened)

        session = yield connect_autobahn(service.url, serializer="msgpack")
        assert (yield within(session.call("wamp.session.count"))) == 1
        transport = session._transport
        session.publish("com.example.small", "x" * 100)
        session.publish("com.example.big", "x" * 2048)  # over the listener's limit: closed with 1009
        yield within(session.disconnected)
        assert transport.remoteCloseCode == 1009
        assert session.judge.failures == []
    finally:
        yield service.stopService()
