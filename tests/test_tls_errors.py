"""A client whose TLS handshake fails says why (``certificate verify failed``), over
wss:// and rss://, without --debug. Certificates made by the test, on 127.0.0.1 only."""

from __future__ import annotations

import pytest
import pytest_twisted

from promisifier.client import ConnectFailed, connect
from promisifier.relay.relay_config import load_config
from promisifier.relay.service import RelayService
from tests.support import within
from tests.test_tls import make_certificate

pytestmark = pytest.mark.slow

CONFIG = """
[[listeners]]
endpoint = "ssl:0:interface=127.0.0.1:privateKey=certs/relay.key:certKey=certs/relay.crt"

[[listeners]]
endpoint = "ssl:0:interface=127.0.0.1:certKey=certs/relay.crt:privateKey=certs/relay.key"
transport = "rawsocket"
"""


@pytest.fixture
def untrusted_relay(tmp_path):
    make_certificate(tmp_path / "certs")  # self-signed: this machine does not trust it
    config_file = tmp_path / "relay.toml"
    config_file.write_text(CONFIG)
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    yield service
    pytest_twisted.blockon(service.stopService())


@pytest_twisted.inlineCallbacks
def test_failed_tls_handshake_says_certificate_verify_failed(untrusted_relay):
    for url in untrusted_relay.urls:
        assert url.startswith(("wss://", "rss://"))
        with pytest.raises(ConnectFailed) as raised:
            yield within(connect(url, "realm1", timeout=5))
        assert str(raised.value) == f"cannot connect to {url}: TLS handshake failed: certificate verify failed"
