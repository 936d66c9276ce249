"""The relay in a real browser: headless Chromium, driven over the Chrome DevTools protocol.

Two tabs on one relay (the relay service, a loopback listener, status page on):

* the status page (``/status``) shows 0 sessions, then, without a reload, the sessions
  that join and the browser's registration; a screenshot of it is saved as a test
  artifact (``build/test-artifacts/status-page.png``, or ``$PROMISIFIER_TEST_ARTIFACTS``);
* the browser example, examples/browser/index.html, served by the relay (the folder
  mounted at ``/browser/`` for this test, as a plain static resource), loads autobahn-js
  (the ``autobahn-browser`` build from npm, tests/interop/js/node_modules; MIT licence,
  its LICENSE is served beside it), subscribes to ``com.browser.news`` and registers
  ``com.browser.sum`` in the browser; the example's Python side,
  examples/browser/drive.py, run as a child process, calls the browser's procedure
  through the relay and publishes to it.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it); nothing downloads a
browser. Without ``chromium`` (or without ``npm ci`` in tests/interop/js) the test skips,
unless ``CI`` is set, where it fails. The DevTools client is autobahn's WebSocket client on
the test's reactor; every wait is on a condition, bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from base64 import b64decode
from pathlib import Path
from urllib.parse import urlencode

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.web.static import File

from tests.support import within
from tests.test_examples import Example

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
AUTOBAHN_BROWSER = REPO / "tests" / "interop" / "js" / "node_modules" / "autobahn-browser"
#: the browser example: its page (index.html) and its Python side (drive.py)
BROWSER_EXAMPLE = REPO / "examples" / "browser"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1280,1000",
)
#: bound on each wait in the browser (seconds)
BROWSER_WAIT = 15.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: .ci/run should have installed it)")
    pytest.skip(reason)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    _unavailable("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    raise AssertionError("unreachable")


def autobahn_browser_dir() -> Path:
    if not (AUTOBAHN_BROWSER / "autobahn.min.js").is_file():
        _unavailable("autobahn-browser is not installed: run tests/interop/js/install.sh (npm ci)")
    return AUTOBAHN_BROWSER


# -- a small Chrome DevTools protocol client on Twisted ----------------------------------------


class DevToolsError(Exception):
    pass


class _DevToolsProtocol(WebSocketClientProtocol):
    def onOpen(self):  # noqa: N802 - autobahn API
        self.factory.client._opened(self)

    def onMessage(self, payload, isBinary):  # noqa: N802, N803
        self.factory.client._received(json.loads(payload))

    def onClose(self, wasClean, code, reason):  # noqa: N802, N803
        self.factory.client._closed(reason)


class DevTools:
    """Commands over the browser's DevTools WebSocket; ``send`` fires with the result."""

    def __init__(self) -> None:
        self.protocol: _DevToolsProtocol | None = None
        self.opened: defer.Deferred = defer.Deferred()
        self._next_id = 0
        self._waiting: dict[int, defer.Deferred] = {}

    @classmethod
    def connect(cls, url: str) -> defer.Deferred:
        client = cls()
        factory = WebSocketClientFactory(url)
        factory.protocol = _DevToolsProtocol
        factory.client = client
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        connecting = TCP4ClientEndpoint(reactor, host, int(port), timeout=10).connect(factory)
        connecting.addErrback(lambda failure: client.opened.called or client.opened.errback(failure))
        return within(client.opened).addCallback(lambda _: client)

    def _opened(self, protocol_: _DevToolsProtocol) -> None:
        self.protocol = protocol_
        self.opened.callback(self)

    def _received(self, message: dict) -> None:
        waiting = self._waiting.pop(message.get("id"), None)  # events (no id) are not used
        if waiting is None:
            return
        if "error" in message:
            waiting.errback(DevToolsError(message["error"]))
        else:
            waiting.callback(message.get("result", {}))

    def _closed(self, reason: object) -> None:
        if not self.opened.called:
            self.opened.errback(DevToolsError(f"DevTools connection closed: {reason}"))
        waiting, self._waiting = self._waiting, {}
        for deferred in waiting.values():
            deferred.errback(DevToolsError(f"DevTools connection closed: {reason}"))

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = BROWSER_WAIT
    ) -> defer.Deferred:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        waiting: defer.Deferred = defer.Deferred()
        self._waiting[self._next_id] = waiting
        self.protocol.sendMessage(json.dumps(message).encode("utf-8"))
        return within(waiting, timeout)

    @defer.inlineCallbacks
    def open_tab(self, url: str):
        """A new tab at ``url``: fires with its session id (flat sessions) once the
        navigation committed."""
        target = yield self.send("Target.createTarget", {"url": "about:blank"})
        attached = yield self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        session = attached["sessionId"]
        navigated = yield self.send("Page.navigate", {"url": url}, session)
        if navigated.get("errorText"):
            raise DevToolsError(f"cannot open {url}: {navigated['errorText']}")
        return session

    @defer.inlineCallbacks
    def wait_for(self, session: str, condition: str, what: str, timeout: float = BROWSER_WAIT):
        """Evaluate the JavaScript expression ``condition`` in the tab until it is truthy
        (the page is loading or updating meanwhile); fires with its value."""
        script = f"""
            new Promise(function (resolve, reject) {{
              var deadline = Date.now() + {int(timeout * 1000)};
              (function check() {{
                var value;
                try {{ value = ({condition}); }} catch (error) {{ value = undefined; }}
                if (value) {{ resolve(value); return; }}
                if (Date.now() > deadline) {{
                  reject(new Error({json.dumps(what)} + " not seen; page text: " +
                                   (document.body ? document.body.innerText.slice(0, 3000) : "(no body)")));
                  return;
                }}
                setTimeout(check, 50);
              }})();
            }})"""
        for attempt in range(20):
            try:
                result = yield self.send(
                    "Runtime.evaluate",
                    {"expression": script, "awaitPromise": True, "returnByValue": True},
                    session,
                    timeout + 5,
                )
                break
            except DevToolsError as error:
                # The page was replaced under the evaluation (navigation): run it again in
                # the new page.
                if "context" not in str(error).lower() or attempt == 19:
                    raise
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise AssertionError(f"in the browser: {text}")
        return result["result"].get("value")


class _ChromiumProcess(protocol.ProcessProtocol):
    """Reads the DevTools URL from Chromium's stderr; ``ended`` fires when it exits."""

    def __init__(self) -> None:
        self.devtools_url: defer.Deferred = defer.Deferred()
        self.ended: defer.Deferred = defer.Deferred()
        self.output = b""

    def childDataReceived(self, fd, data):  # noqa: N802 - Twisted API
        self.output += data
        if not self.devtools_url.called:
            for line in self.output.decode("utf-8", "replace").splitlines():
                if line.startswith("DevTools listening on ws://"):
                    self.devtools_url.callback(line.split(" on ", 1)[1].strip())
                    return

    def processEnded(self, reason):  # noqa: N802
        if not self.devtools_url.called:
            self.devtools_url.errback(
                DevToolsError(f"chromium exited: {self.output.decode('utf-8', 'replace')[-2000:]}")
            )
        self.ended.callback(None)


@pytest.fixture
def chromium():
    """A headless Chromium with a fresh profile; fires with a connected DevTools client."""
    executable = chromium_path()
    profile = tempfile.mkdtemp(prefix="promisifier-chromium-")
    process = _ChromiumProcess()
    transport = reactor.spawnProcess(
        process,
        executable,
        [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        env={**os.environ, "HOME": profile},
    )

    @defer.inlineCallbacks
    def start():
        url = yield within(process.devtools_url, 30)
        client = yield DevTools.connect(url)
        return client

    yield start

    @defer.inlineCallbacks
    def stop():
        if not process.ended.called:
            try:
                transport.signalProcess("TERM")
            except Exception:  # noqa: BLE001 - already gone
                pass
            try:
                yield within(process.ended, 10)
            except defer.TimeoutError:
                transport.signalProcess("KILL")
                yield within(process.ended, 10)

    pytest_twisted.blockon(stop())
    shutil.rmtree(profile, ignore_errors=True)


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("PROMISIFIER_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- the test -------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_status_page_and_a_browser_callee_in_headless_chromium(relays, chromium):
    library = autobahn_browser_dir()
    relay = relays()
    # The browser example's folder and autobahn-js beside the relay's own resources, as
    # plain static files (the example's README: any static file server will do).
    page = File(str(BROWSER_EXAMPLE), defaultType="text/plain")
    page.putChild(b"autobahn.min.js", File(str(library / "autobahn.min.js"), defaultType="text/javascript"))
    page.putChild(b"LICENSE.autobahn", File(str(library / "LICENSE"), defaultType="text/plain"))
    relay.service.listeners[0].site.resource.putChild(b"browser", page)

    browser = yield chromium()
    status_tab = yield browser.open_tab(f"{relay.http}/status?interval=250")
    yield browser.wait_for(status_tab, "document.body.getAttribute('data-updates') !== '0'", "a first update")
    count = yield browser.wait_for(status_tab, "document.getElementById('session-count').textContent", "the count")
    assert count == "0"

    # A Python client joins: the page shows it without a reload.
    python = yield relay.connect()
    yield browser.wait_for(
        status_tab, "document.getElementById('session-count').textContent === '1'", "1 session on the status page"
    )

    # The browser offers a service through the relay: the example's Python side calls it.
    callee_tab = yield browser.open_tab(f"{relay.http}/browser/?{urlencode({'url': relay.url, 'realm': 'realm1'})}")
    yield browser.wait_for(callee_tab, "document.getElementById('state').textContent === 'ready'", "the browser callee")
    browser_session = yield browser.wait_for(callee_tab, "window.browserSession", "the browser's session id")
    drive = Example.run("examples/browser/drive.py", "--url", relay.url, "--wait", str(BROWSER_WAIT))
    try:
        lines = yield drive.succeeds()
    finally:
        drive.kill()
    assert lines == [
        "the browser says: com.browser.sum([1, 2, 3, 4.5]) = 10.5",
        "published 'hello from Python' to com.browser.news",
    ]
    news = yield browser.wait_for(callee_tab, "window.received.length && window.received", "the event in the browser")
    assert news == ["hello from Python"]
    calls = yield browser.wait_for(callee_tab, "window.calls.length && window.calls", "the call in the browser")
    assert calls == ["1 + 2 + 3 + 4.5 = 10.5"]

    # The status page shows the browser's session and registration (with its call).
    yield browser.wait_for(
        status_tab, "document.getElementById('session-count').textContent === '2'", "2 sessions on the status page"
    )
    # (the row may show up before the call: wait until it counts the call of drive.py)
    row = yield browser.wait_for(
        status_tab,
        """Array.from(document.querySelectorAll('tr')).map(function (tr) { return tr.innerText; })
             .filter(function (text) {
               return text.indexOf('com.browser.sum') === 0 && text.split('\\t')[4] === '1';
             })[0]""",
        "the browser's registration with 1 call",
    )
    cells = row.split("\t")
    assert cells[:3] == ["com.browser.sum", "exact", "single"]
    assert cells[3] == str(browser_session) and cells[4] == "1"
    sessions_text = yield browser.wait_for(
        status_tab,
        f"document.body.innerText.indexOf('{browser_session}') >= 0 && document.body.innerText",
        "the browser's session",
    )
    assert "websocket / json" in sessions_text
    status = yield relay.get_json()
    assert {s["id"] for s in status["realms"][0]["sessions"]} == {python.session_id, browser_session}

    shot = yield browser.send("Page.captureScreenshot", {"format": "png"}, status_tab)
    path = artifacts_dir() / "status-page.png"
    path.write_bytes(b64decode(shot["data"]))
    assert path.stat().st_size > 10_000 and path.read_bytes().startswith(b"\x89PNG")
    print(f"status page screenshot: {path}")

    # and one of the browser example's page, after its call and its event
    shot = yield browser.send("Page.captureScreenshot", {"format": "png"}, callee_tab)
    path = artifacts_dir() / "browser-example.png"
    path.write_bytes(b64decode(shot["data"]))
    assert path.read_bytes().startswith(b"\x89PNG")
    print(f"browser example screenshot: {path}")


@pytest_twisted.inlineCallbacks
def test_rpc_websockets_browser_client_served_by_the_relay(relays, chromium):
    """examples/browser/rpc.html from the relay's static root (and rpc-websockets' browser
    bundle from tests/interop/js/node_modules, mounted as the page's node_modules): the
    page calls a procedure a Python callee registered and receives its event, all on the
    relay's port."""
    from tests.relay_support import relay_config

    bundle = REPO / "tests" / "interop" / "js" / "node_modules" / "rpc-websockets" / "dist"
    if not (bundle / "index.browser-bundle.js").is_file():
        _unavailable("rpc-websockets is not installed: run tests/interop/js/install.sh (npm ci)")
    relay = relays(
        relay_config(
            f"""
            [[listeners]]
            endpoint = "tcp:0:interface=127.0.0.1"
            [[listeners.rpc_websockets]]
            path = "/rpc"
            uri_prefix = "com.example."
            [[listeners.static]]
            path = "/"
            directory = "{BROWSER_EXAMPLE}"
            [[listeners.static]]
            path = "/node_modules"
            directory = "{bundle.parent.parent}"
            """
        )
    )
    callee = yield relay.connect()
    yield callee.register("com.example.add", lambda a, b: a + b)

    browser = yield chromium()
    tab = yield browser.open_tab(f"{relay.http}/rpc.html")
    yield browser.wait_for(tab, "document.getElementById('state').textContent === 'ready'", "the rpc-websockets page")
    assert (yield browser.wait_for(tab, "window.rpcResult", "the result of add")) == 5
    yield callee.publish("com.example.news", "hello from Python")
    news = yield browser.wait_for(tab, "window.rpcNews.length && window.rpcNews", "the event in the browser")
    assert news == ["hello from Python"]
    # the page's session is one of the realm, over the rpc-websockets transport
    status = yield relay.get_json()
    transports = {s.get("transport") for s in status["realms"][0]["sessions"]}
    assert "rpc-websockets" in transports, status["realms"][0]["sessions"]
