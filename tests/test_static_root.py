"""Static folders of a listener (``[[listeners.static]]``): served beside the WAMP
WebSocket and the other paths, at '/' as the root under everything else."""

from __future__ import annotations

import pytest
import pytest_twisted

from promisifier.relay.relay_config import ConfigError
from tests.relay_support import relay_config

pytestmark = pytest.mark.slow


def config(tmp_path, extra: str = "") -> str:
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "index.html").write_text("<p>hello</p>")
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "docs" / "a.txt").write_text("a")
    return (
        f"""
    [[listeners]]
    endpoint = "tcp:0:interface=127.0.0.1"
    status = true
    [[listeners.static]]
    path = "/"
    directory = "{tmp_path / "site"}"
    [[listeners.static]]
    path = "/docs"
    directory = "{tmp_path / "docs"}"
    """
        + extra
    )


@pytest_twisted.inlineCallbacks
def test_static_root_beside_wamp_and_the_status_page(relays, tmp_path):
    relay = relays(relay_config(config(tmp_path)))
    code, content_type, body = yield relay.get("/index.html")
    assert (code, body) == (200, b"<p>hello</p>") and content_type.startswith("text/html")
    code, _, body = yield relay.get("/docs/a.txt")
    assert (code, body) == (200, b"a")
    assert (yield relay.get("/nothing.html"))[0] == 404
    assert (yield relay.get_json("/status.json"))["realms"]
    session = yield relay.connect()  # the WAMP WebSocket at /ws, under the static root
    assert session.is_joined


@pytest.mark.parametrize(
    "extra, error",
    [
        (
            '[[listeners.static]]\npath = "/"\ndirectory = "."\n',
            "listeners[0].static[2].path: only one static folder can be at '/'",
        ),
        (
            '[[listeners.static]]\npath = "/ws/x"\ndirectory = "."\n',
            "listeners[0].static[2].path: '/ws/x' overlaps '/ws'",
        ),
        (
            '[[listeners.static]]\npath = "/x"\ndirectory = "/no/such/folder"\n',
            "listeners[0].static[2].directory: '/no/such/folder' is not a folder",
        ),
    ],
)
def test_static_config_errors(tmp_path, extra, error):
    with pytest.raises(ConfigError) as raised:
        relay_config(config(tmp_path, extra))
    assert error in str(raised.value)


def test_a_static_root_needs_the_wamp_websocket_off_root(tmp_path):
    with pytest.raises(ConfigError) as raised:
        relay_config(config(tmp_path).replace("status = true", 'path = "/"'))
    assert "a static folder at '/' needs the WAMP WebSocket on a path such as '/ws'" in str(raised.value)
