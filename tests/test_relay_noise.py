"""The relay's own noise and pages: polled paths logged at debug, no "Starting factory"
lines, a UNIX listener named by its path, start-up lines naming the status, health and
metrics URLs, and a page at ``GET /`` instead of a 404."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from promisifier.relay.command_line import RelayOptions
from tests.relay_support import Relay, relay_config

pytestmark = pytest.mark.slow


def recorded() -> tuple[list, object]:
    events: list = []
    globalLogPublisher.addObserver(events.append)
    return events, events.append


def lines(events: list, level: LogLevel = LogLevel.info) -> list[str]:
    return [formatEvent(e) for e in events if e.get("log_level") is level]


@pytest_twisted.inlineCallbacks
def test_polled_paths_at_debug_and_start_up_lines_name_the_pages(relays):
    events, observer = recorded()
    try:
        relay = relays()
        for path in ("/status", "/status.json", "/health", "/metrics"):
            code, _, _ = yield relay.get(path)
            assert code == 200, path
    finally:
        globalLogPublisher.removeObserver(observer)
    info = "\n".join(lines(events))
    assert '"GET /status HTTP/1.1" 200' in info  # the page itself, once per visit
    for polled in ("/status.json", "/health", "/metrics"):
        assert f"GET {polled} HTTP" not in info
        assert any(f"GET {polled} HTTP" in line for line in lines(events, LogLevel.debug)), polled
    assert not any(line.startswith("Starting factory <promisifier") for line in lines(events))
    base = relay.http
    assert f"promisifier relay: status {base}/status, health {base}/health, metrics {base}/metrics" in info


@pytest_twisted.inlineCallbacks
def test_home_page_links_the_status_page(relays):
    relay = relays()
    code, content_type, body = yield relay.get("/")
    assert (code, content_type) == (200, "text/html; charset=utf-8")
    assert b'<a href="/status">/status</a>' in body and b"<code>/ws</code>" in body
    code, _, _ = yield relay.get("/nothing-here")
    assert code == 404


@pytest_twisted.inlineCallbacks
def test_unix_listener_is_named_by_its_path(tmp_path):
    socket_path = tmp_path / "relay.sock"
    events, observer = recorded()
    try:
        relay = Relay(relay_config(f'[[listeners]]\nendpoint = "unix:{socket_path}"\n'))
        try:
            assert relay.service.url == f"ws+unix:{socket_path}:/ws"
        finally:
            yield relay.stop()
    finally:
        globalLogPublisher.removeObserver(observer)
    assert f"promisifier relay serving ws+unix:{socket_path}:/ws (realms: realm1)" in lines(events)
    assert not any("UNIXAddress" in line for line in lines(events))


def test_status_page_says_events_include_meta_events():
    from importlib import resources

    page = resources.files("promisifier.relay").joinpath("status/index.html").read_text()
    assert "events published / delivered (meta events included)" in page


def test_rawsocket_help_has_no_stray_spaces():
    usage = str(RelayOptions())
    assert "endpoint string; repeat for several" in " ".join(usage.split())
    assert ";  " not in usage
