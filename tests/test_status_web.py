"""The relay's status page, its JSON, and /health, on the listener's own port.

A relay service on 127.0.0.1 (an ephemeral port), real clients, real HTTP requests.
"""

from __future__ import annotations

import tomllib

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from promisifier import ApplicationError
from promisifier.relay.relay_config import ConfigError, ListenerConfig, RelayConfig, default_config, parse_config
from promisifier.relay.web import RelayWeb
from promisifier.router import Router, RouterConfig
from tests.relay_support import LOOPBACK, relay_config
from tests.support import within

pytestmark = pytest.mark.slow


def realm_of(status: dict, name: str = "realm1") -> dict:
    [realm] = [realm for realm in status["realms"] if realm["name"] == name]
    return realm


# -- the page and its data ----------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_the_page_its_assets_and_its_json_are_served_beside_the_websocket(relays):
    relay = relays()
    code, content_type, page = yield relay.get("/status")
    assert (code, content_type) == (200, "text/html; charset=utf-8")
    assert b'data-status-json="/status.json"' in page
    assert b'src="/status/status.js"' in page and b'href="/status/status.css"' in page
    assert b'id="session-count"' in page
    assert b'href="/metrics"' in page and b'href="/health"' in page
    assert b"__" not in page  # every placeholder was filled
    code, _, same = yield relay.get("/status/")
    assert (code, same) == (200, page)
    code, content_type, script = yield relay.get("/status/status.js")
    assert (code, content_type) == (200, "text/javascript; charset=utf-8")
    assert b"fetch(jsonUrl" in script and b"http://" not in script.replace(b"http://www.w3.org/2000/svg", b"")
    code, content_type, _ = yield relay.get("/status/status.css")
    assert (code, content_type) == (200, "text/css; charset=utf-8")
    code, _, _ = yield relay.get("/status/nothing.js")
    assert code == 404
    status = yield relay.get_json()
    assert status["relay"]["serving"] is True
    assert status["relay"]["listeners"] == [relay.url]
    assert [realm["name"] for realm in status["realms"]] == ["realm1"]
    assert status["totals"]["sessions"] == 0


@pytest_twisted.inlineCallbacks
def test_the_json_shows_sessions_registrations_subscriptions_and_their_counters(relays):
    relay = relays()
    callee = yield relay.connect(serializers=["json"])
    caller = yield relay.connect(serializers=["msgpack"])

    def add(a, b):
        return a + b

    def fail():
        raise ApplicationError("com.example.nope", "no")

    yield within(callee.register("com.example.add", add))
    yield within(callee.register("com.example.fail", fail))
    received: defer.Deferred = defer.Deferred()
    yield within(callee.subscribe("com.example", lambda *args: received.callback(args), match="prefix"))
    assert (yield within(caller.call("com.example.add", 2, 3))) == 5
    with pytest.raises(ApplicationError):
        yield within(caller.call("com.example.fail"))
    with pytest.raises(ApplicationError):
        yield within(caller.call("com.example.missing"))
    yield within(caller.publish("com.example.news", "hello", acknowledge=True))
    yield within(received)

    status = yield relay.get_json()
    realm = realm_of(status)
    sessions = {s["id"]: s for s in realm["sessions"]}
    assert set(sessions) == {callee.session_id, caller.session_id}
    mine = sessions[callee.session_id]
    assert mine["authid"] == f"anonymous-{callee.session_id}" and mine["authrole"] == "anonymous"
    assert (mine["transport"], mine["serializer"]) == ("websocket", "json")
    assert sessions[caller.session_id]["serializer"] == "msgpack"
    assert mine["peer"].startswith("tcp4:127.0.0.1:")
    assert abs(mine["connected_since"] - status["relay"]["now"]) < 60
    # REGISTER x2, SUBSCRIBE, YIELD, ERROR in; REGISTERED x2, SUBSCRIBED, INVOCATION x2, EVENT out (+ HELLO/WELCOME)
    assert mine["messages_in"] >= 6 and mine["messages_out"] >= 7
    assert mine["bytes_in"] > 0 and mine["bytes_out"] > 0
    assert mine["pending_calls"] == 0 and mine["dropped_events"] == 0
    registrations = {r["uri"]: r for r in realm["registrations"]}
    assert registrations["com.example.add"] == {
        "id": registrations["com.example.add"]["id"],
        "uri": "com.example.add",
        "match": "exact",
        "invoke": "single",
        "callees": [callee.session_id],
        "calls": 1,
        "errors": 0,
    }
    assert (registrations["com.example.fail"]["calls"], registrations["com.example.fail"]["errors"]) == (1, 1)
    [subscription] = realm["subscriptions"]
    assert (subscription["uri"], subscription["match"], subscription["subscribers"], subscription["delivered"]) == (
        "com.example",
        "prefix",
        1,
        1,
    )
    totals = status["totals"]
    assert (totals["sessions"], totals["registrations"], totals["subscriptions"]) == (2, 2, 1)
    assert totals["calls"]["result"] == 1 and totals["calls"]["error"] == 1 and totals["calls"]["rejected"] == 1
    assert totals["events_delivered"] >= 1 and totals["events_published"] >= 1
    assert totals["messages_in"] >= mine["messages_in"] + sessions[caller.session_id]["messages_in"]
    assert set(status["traffic"]) == {"json", "msgpack"}
    assert realm["call_latency"]["count"] == 2


@pytest_twisted.inlineCallbacks
def test_the_session_count_follows_joins_and_leaves(relays):
    relay = relays()
    first = yield relay.connect()
    second = yield relay.connect()
    assert (yield relay.get_json())["totals"]["sessions"] == 2
    yield within(first.leave())
    status = yield relay.get_json()
    assert status["totals"]["sessions"] == 1
    assert [s["id"] for s in realm_of(status)["sessions"]] == [second.session_id]


@pytest_twisted.inlineCallbacks
def test_client_text_goes_into_the_json_as_data(relays):
    relay = relays()
    session = yield relay.connect()
    uri = "com.example.<img/src/onerror=alert(1)>"
    yield within(session.register(uri, lambda: None))
    code, _, body = yield relay.get("/status.json")
    assert code == 200
    # JSON strings, which the page shows with textContent: never markup
    assert orjson.loads(body)["realms"][0]["registrations"][0]["uri"] == uri


def test_rates_over_the_last_minute_come_from_samples_every_two_seconds():
    clock = Clock()
    router = Router(RouterConfig(), reactor=clock)
    web = RelayWeb(router)
    web.start()  # samples at once, then every 2 s
    dealer = router.realms["realm1"].dealer
    for _ in range(40):
        dealer.calls_timeout += 10
        clock.advance(2)
    points = web.history()
    assert len(points) == 30  # one minute
    assert all(point["calls_rate"] == 5.0 and point["sessions"] == 0 for point in points)
    assert points[-1]["t"] - points[0]["t"] == pytest.approx(58)
    web.stop()
    assert not clock.getDelayedCalls()


def test_an_embedded_router_without_the_service_samples_when_asked():
    clock = Clock()
    web = RelayWeb(Router(RouterConfig(), reactor=clock))
    assert web.history() == []
    clock.advance(3)
    [point] = web.history()
    assert point["messages_in_rate"] == 0
    assert RelayWeb.of(web.router) is RelayWeb.of(web.router)


# -- /health ---------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_health_is_200_while_serving_and_503_once_the_router_stops(relays):
    relay = relays()
    code, content_type, body = yield relay.get("/health")
    assert (code, content_type) == (200, "application/json")
    assert orjson.loads(body)["status"] == "serving"
    yield relay.connect()
    assert orjson.loads((yield relay.get("/health"))[2])["sessions"] == 1
    # The router starts to shut down (its sessions still open): the port still answers.
    stopping = relay.router.stop(grace=0)
    code, _, body = yield relay.get("/health")
    assert code == 503 and orjson.loads(body)["status"] == "shutting_down"
    status = yield relay.get_json()
    assert status["relay"]["serving"] is False
    yield within(stopping)


@pytest_twisted.inlineCallbacks
def test_stopping_the_service_turns_health_to_503(relays):
    relay = relays()
    web = relay.service.web
    assert web.health()[0] == 200
    yield within(relay.service.stopService())
    code, body = web.health()
    assert code == 503 and body["status"] == "shutting_down"


# -- per-listener options -----------------------------------------------------------------------


def test_status_health_and_metrics_are_on_by_default_only_on_loopback():
    assert ListenerConfig().web_paths() == {
        "status": "/status",
        "status.json": "/status.json",
        "health": "/health",
        "metrics": "/metrics",
    }
    assert ListenerConfig(endpoint="unix:/tmp/relay.sock").serves_status
    assert ListenerConfig(endpoint="tcp:8080").web_paths() == {}
    assert ListenerConfig(endpoint="tcp:8080:interface=0.0.0.0").web_paths() == {}
    assert ListenerConfig(endpoint="tcp:8080", health=True).web_paths() == {"health": "/health"}
    assert ListenerConfig(path="/").web_paths() == {}  # a WebSocket at "/" leaves no room
    assert default_config().listeners[0].serves_metrics


def test_a_status_page_on_a_public_address_is_warned_about():
    warnings = relay_config(
        '[[listeners]]\nendpoint = "tcp:8080"\nstatus = true\nmetrics = true\nhealth = true'
    ).warnings()
    assert any("listeners[0].status: the status page on a non-loopback address" in w for w in warnings)
    assert any("listeners[0].metrics: the metrics on a non-loopback address" in w for w in warnings)
    assert not any(".health" in w for w in warnings)
    assert relay_config("").warnings() == []


@pytest.mark.parametrize(
    "text, error",
    [
        ('status_path = "/ws"', "listeners[0].status_path: status at '/ws' overlaps '/ws' (listeners[0].path)"),
        ('path = "/metrics"', "listeners[0].metrics: metrics at '/metrics' overlaps '/metrics' (listeners[0].path)"),
        ('path = "/"\nhealth = true', "listeners[0].path: the WAMP WebSocket at '/' leaves no room for health"),
        ('status_path = "/status/"', "listeners[0].status_path: expected a URL path that does not end with '/'"),
        ('status_path = "status"', "listeners[0].status_path: expected a URL path starting with '/'"),
        ("metrics = 1", "listeners[0].metrics: expected true or false, got 1 (an integer)"),
        (
            '[[endpoints]]\npath = "/health"\nhandler = "json"',
            "listeners[0].health: health at '/health' overlaps '/health' (endpoints[0].path)",
        ),
    ],
)
def test_web_paths_are_checked_against_the_websockets(text, error):
    listener, _, rest = text.partition("[[endpoints]]")
    document = f'[[listeners]]\nendpoint = "{LOOPBACK}"\n{listener}\n' + (f"[[endpoints]]{rest}" if rest else "")
    with pytest.raises(ConfigError) as raised:
        parse_config(tomllib.loads(document))
    assert any(found.startswith(error) for found in raised.value.errors), raised.value.errors


@pytest_twisted.inlineCallbacks
def test_each_can_be_switched_off_and_the_status_page_moved(relays):
    relay = relays(relay_config('status_path = "/admin/relay"\nmetrics = false\nhealth = false'))
    code, _, page = yield relay.get("/admin/relay")
    assert code == 200 and b'data-status-json="/admin/relay.json"' in page
    assert b'src="/admin/relay/status.js"' in page and b"/metrics" not in page
    assert (yield relay.get("/admin/relay/status.js"))[0] == 200
    assert (yield relay.get_json("/admin/relay.json"))["totals"]["sessions"] == 0
    for path in ("/status", "/status.json", "/metrics", "/health"):
        assert (yield relay.get(path))[0] == 404, path
    session = yield relay.connect()  # the WebSocket is where it was
    assert session.is_joined

    off = relays(relay_config("status = false\nhealth = false\nmetrics = false"))
    for path in ("/status", "/status.json", "/metrics", "/health"):
        assert (yield off.get(path))[0] == 404, path


@pytest_twisted.inlineCallbacks
def test_a_reload_can_switch_the_status_page_on_and_off(relays, tmp_path):
    config_file = tmp_path / "relay.toml"
    config_file.write_text(f'[[listeners]]\nendpoint = "{LOOPBACK}"\nstatus = false\n')
    from promisifier.relay.relay_config import load_config

    relay = relays()
    relay.service.config_file = str(config_file)
    # keep the port: reload into a config with the port the service got
    port = relay.service.port.getHost().port
    endpoint = f"tcp:{port}:interface=127.0.0.1"
    relay.service.listeners[0].config = ListenerConfig(endpoint=endpoint)
    relay.service.config = RelayConfig(
        router=relay.service.config.router, listeners=(ListenerConfig(endpoint=endpoint),)
    )
    assert (yield relay.get("/status"))[0] == 200
    config_file.write_text(f'[[listeners]]\nendpoint = "{endpoint}"\nstatus = false\n')
    assert (yield within(relay.service.reload())) is True
    assert load_config(config_file).listeners[0].status is False
    assert (yield relay.get("/status"))[0] == 404
    assert (yield relay.get("/health"))[0] == 200
