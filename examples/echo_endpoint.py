"""A plain (non-WAMP) WebSocket endpoint handler: echoes every message back.

The relay serves it beside WAMP when its config file says (see examples/relay.toml)::

    [[endpoints]]
    path = "/websockets/echo"
    handler = "echo_endpoint"      # this module; PYTHONPATH=examples

A handler is any module or object with some of on_open, on_message, on_error, on_close.
Connect with any WebSocket client, e.g. ``new WebSocket("ws://127.0.0.1:8080/websockets/echo")``.
"""

from promisifier import websockets


def on_open(client):
    client.send(f"hello, client {client.id}; {len(websockets.get_client_by_handler(__name__))} connected here")


def on_message(client, message):
    client.send(message)  # text comes back as text, bytes as bytes


def on_error(client, error):
    print(f"echo endpoint: client {client.id}: {error!r}")


def on_close(client, code, reason):
    print(f"echo endpoint: client {client.id} closed ({code} {reason})")
