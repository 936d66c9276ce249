"""HTTP publish and call (``[listeners.http]``): a relay in this process, requests with
twisted's HTTP client, WAMP clients and an rpc-websockets client on the other side."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from promisifier import ApplicationError
from promisifier.bridge.http import sign
from promisifier.relay.relay_config import parse_config
from tests.raw_support import no_unhandled_errors  # noqa: F401 - autouse: no exception may reach the log
from tests.relay_support import relay_config
from tests.rpc_support import FrameClient
from tests.support import until, within

pytestmark = pytest.mark.slow

CONFIG = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"
[listeners.limits]
max_message_size = 4096
[listeners.auth]
methods = ["anonymous", "ticket"]
[listeners.auth.ticket.principals.alice]
ticket = "alice-secret"
role = "user"
[listeners.http]
path = "/http"
call_timeout = 2000
timestamp_delta_limit = 60
[listeners.http.keys.backend]
secret = "backend-key-secret"
role = "user"
[[listeners.rpc_websockets]]
path = "/rpc"
uri_prefix = "com.example."

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true
register = true
publish = true
subscribe = true
[[realms.roles.permissions]]
uri = "com.example.private"
match = "exact"
register = true
[[realms.roles.permissions]]
uri = "wamp.session.on_join"
match = "exact"
subscribe = true
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true
publish = true
subscribe = true
"""


@defer.inlineCallbacks
def started(relays):
    relay = relays(relay_config(CONFIG))
    backend = yield relay.connect()
    yield backend.register("com.example.add", lambda a, b: a + b)
    yield backend.register("com.example.private", lambda: "private")
    yield backend.register("com.example.named", lambda **kw: {"got": kw})

    def fail():
        raise ApplicationError("com.example.oops", "it broke", code=7)

    yield backend.register("com.example.fail", fail)
    return relay, backend


@defer.inlineCallbacks
def post(relay, path: str, body, headers: dict | None = None, query: dict | None = None, method: bytes = b"POST"):
    """POST ``body`` (an object: JSON-encoded; bytes: as they are); fires with (status, JSON or bytes)."""
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    url = relay.http + path + ("?" + urlencode(query) if query else "")
    all_headers = {b"content-type": [b"application/json"]}
    for name, value in (headers or {}).items():
        all_headers[name.encode()] = [value.encode()]
    producer = FileBodyProducer(__import__("io").BytesIO(payload)) if method == b"POST" else None
    response = yield within(Agent(reactor).request(method, url.encode(), Headers(all_headers), producer))
    data = yield within(readBody(response))
    try:
        return response.code, json.loads(data)
    except ValueError:
        return response.code, data


def signed_query(body: bytes, *, key="backend", secret="backend-key-secret", nonce=1, when=None, seq=1) -> dict:
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "key": key,
        "timestamp": stamp,
        "seq": seq,
        "nonce": nonce,
        "signature": sign(secret, key, stamp, seq, nonce, body),
    }


@pytest_twisted.inlineCallbacks
def test_publish_and_call_anonymously(relays):
    relay, backend = yield started(relays)
    received = defer.Deferred()
    yield backend.subscribe("com.example.news", lambda *a, **kw: received.callback((a, kw)))
    status, answer = yield post(
        relay, "/http/publish", {"topic": "com.example.news", "args": ["hi"], "kwargs": {"n": 1}}
    )
    assert status == 200 and isinstance(answer["id"], int)
    assert (yield within(received)) == (("hi",), {"n": 1})
    assert (yield post(relay, "/http/call", {"procedure": "com.example.add", "args": [2, 3]})) == (
        200,
        {"args": [5], "kwargs": {}},
    )
    status, answer = yield post(relay, "/http/call", {"procedure": "com.example.named", "kwargs": {"x": 1}})
    assert (status, answer["args"]) == (200, [{"got": {"x": 1}}])
    # each request was a session of its own, gone afterwards
    assert (yield until(lambda: relay.router.session_count == 1))


@pytest_twisted.inlineCallbacks
def test_wamp_errors_come_back_with_a_status(relays):
    relay, _ = yield started(relays)
    assert (yield post(relay, "/http/call", {"procedure": "com.example.nope"}))[0] == 404
    status, answer = yield post(relay, "/http/call", {"procedure": "com.example.fail"})
    assert (status, answer) == (500, {"error": "com.example.oops", "args": ["it broke"], "kwargs": {"code": 7}})
    status, answer = yield post(relay, "/http/call", {"procedure": "com.example.private"})
    assert (status, answer["error"]) == (403, "wamp.error.not_authorized")
    status, answer = yield post(relay, "/http/publish", {"topic": "wamp.session.on_join"})
    assert status in (400, 403) and answer["error"].startswith("wamp.error.")


@pytest_twisted.inlineCallbacks
def test_bearer_ticket(relays):
    relay, _ = yield started(relays)
    call = {"procedure": "com.example.private"}
    assert (yield post(relay, "/http/call", call, {"Authorization": "Bearer alice-secret"})) == (
        200,
        {"args": ["private"], "kwargs": {}},
    )
    status, answer = yield post(relay, "/http/call", call, {"Authorization": "Bearer wrong"})
    assert (status, answer["error"]) == (401, "wamp.error.authentication_failed")
    status, _ = yield post(relay, "/http/call", call, {"Authorization": "Basic YWxpY2U6eA=="})
    assert status == 401


@pytest_twisted.inlineCallbacks
def test_signed_requests_and_replays(relays):
    relay, backend = yield started(relays)
    joins: list = []
    yield backend.subscribe("wamp.session.on_join", joins.append)
    body = orjson.dumps({"procedure": "com.example.private"})
    query = signed_query(body, nonce=11)
    assert (yield post(relay, "/http/call", body, query=query)) == (200, {"args": ["private"], "kwargs": {}})
    # the same request again: a replay
    status, answer = yield post(relay, "/http/call", body, query=query)
    assert (status, answer["message"]) == (401, "replayed request (nonce already used)")
    stale = signed_query(body, nonce=12, when=datetime.now(UTC) - timedelta(seconds=120))
    status, answer = yield post(relay, "/http/call", body, query=stale)
    assert (status, answer["message"]) == (401, "stale timestamp")
    wrong = signed_query(body, nonce=13, secret="not the secret")
    assert (yield post(relay, "/http/call", body, query=wrong))[0] == 401
    tampered = signed_query(body, nonce=14)
    assert (
        yield post(relay, "/http/call", orjson.dumps({"procedure": "com.example.add", "args": [1, 1]}), query=tampered)
    )[0] == 401
    unknown = signed_query(body, nonce=15, key="nobody")
    assert (yield post(relay, "/http/call", body, query=unknown))[0] == 401
    partial = {k: v for k, v in signed_query(body, nonce=16).items() if k != "nonce"}
    assert (yield post(relay, "/http/call", body, query=partial))[0] == 400
    # the session of a signed request was the key's, with the key's role, over "http"
    (joined,) = joins
    assert (joined["authid"], joined["authrole"], joined["transport"]["type"]) == ("backend", "user", "http")


@pytest_twisted.inlineCallbacks
def test_bad_requests(relays):
    relay, _ = yield started(relays)
    assert (yield post(relay, "/http/call", b"{nope"))[0] == 400
    assert (yield post(relay, "/http/call", [1, 2]))[0] == 400
    assert (yield post(relay, "/http/call", {"args": [1]}))[0] == 400
    assert (yield post(relay, "/http/publish", {"topic": "com.example.x", "args": {"a": 1}}))[0] == 400
    assert (yield post(relay, "/http/other", {"topic": "com.example.x"}))[0] == 404
    assert (yield post(relay, "/http/call", b"", method=b"GET"))[0] == 405
    status, answer = yield post(relay, "/http/publish", {"topic": "com.example.x", "args": ["x" * 5000]})
    assert (status, answer["error"]) == (413, "promisifier.error.too_large")
    assert relay.router.session_count == 1


@pytest_twisted.inlineCallbacks
def test_an_http_publication_reaches_an_rpc_websockets_subscriber(relays):
    relay, _ = yield started(relays)
    client = yield FrameClient.connect(relay.http.replace("http://", "ws://") + "/rpc")
    assert (yield client.call("rpc.on", ["news"]))["result"] == {"news": "ok"}
    status, _ = yield post(relay, "/http/publish", {"topic": "com.example.news", "args": [{"title": "hello"}]})
    assert status == 200
    assert (yield client.next()) == {"notification": "news", "params": {"title": "hello"}}
    yield client.close()


def _readme_shell_blocks(section: str) -> list[str]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    return [block.split("\n", 1)[1] for block in body.split("```sh")[1:] for block in [block.split("```", 1)[0]]]


@pytest_twisted.inlineCallbacks
def test_the_readme_curl_examples(relays):
    """The README's curl commands, as written, against a relay with examples/bridges.toml
    (on a free port) and the callee of examples/callee.py."""
    if shutil.which("curl") is None or shutil.which("openssl") is None:
        pytest.skip("curl and openssl are needed")
    examples = Path(__file__).resolve().parent.parent / "examples"
    document = tomllib.loads((examples / "bridges.toml").read_text().replace("tcp:8080:", "tcp:0:"))
    relay = relays(parse_config(document, base_dir=str(examples)))
    callee = yield relay.connect()
    yield callee.register("com.example.add", lambda a, b: a + b)
    outputs = []
    for block in _readme_shell_blocks("HTTP publish and call"):
        script = "set -e\n" + block.replace("http://127.0.0.1:8080", relay.http)
        out, err, code = yield within(getProcessOutputAndValue("bash", ["-c", script], env=dict(os.environ)), 30)
        assert code == 0, (script, out, err)
        outputs.append(out.decode())
    plain, signed = outputs
    lines = plain.splitlines()
    assert json.loads(lines[0]).keys() == {"id"}
    assert json.loads(lines[1]) == {"args": [5], "kwargs": {}}
    assert json.loads(lines[2])["error"] == "wamp.error.no_such_procedure"
    assert json.loads(signed) == {"args": [5], "kwargs": {}}


@pytest_twisted.inlineCallbacks
def test_bridge_traffic_in_the_metrics(relays):
    relay, _ = yield started(relays)
    assert (yield post(relay, "/http/call", {"procedure": "com.example.add", "args": [1, 2]}))[0] == 200
    client = yield FrameClient.connect(relay.http.replace("http://", "ws://") + "/rpc")
    assert (yield client.call("add", [1, 2]))["result"] == 3
    yield client.close()
    assert (yield until(lambda: relay.router.session_count == 1))
    code, _, body = yield relay.get("/metrics")
    text = body.decode()
    assert code == 200
    for transport in ("http", "rpc-websockets"):
        for direction in ("in", "out"):
            line = f'promisifier_messages_total{{direction="{direction}",serializer="{transport}"}}'
            assert line in text, text
            assert float(text.split(line, 1)[1].split()[0]) >= 1
