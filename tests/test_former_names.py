"""Names that changed so that each says one thing keep working under their former names
(public names people may have imported), as the very same objects."""

from __future__ import annotations

import importlib

import pytest

from tests.memory_router import MemoryRouter

#: (former module, former name, current module, current name)
RENAMED = [
    ("promisifier.router", "Router", "promisifier.router.router", "RouterCore"),
    ("promisifier.router.router", "Router", "promisifier.router.router", "RouterCore"),
    ("promisifier.router", "SessionState", "promisifier.router.session", "RouterSessionState"),
    ("promisifier.router.session", "SessionState", "promisifier.router.session", "RouterSessionState"),
    ("promisifier.router.dealer", "Registration", "promisifier.router.dealer", "RouterRegistration"),
    ("promisifier.router.broker", "Subscription", "promisifier.router.broker", "RouterSubscription"),
    (
        "promisifier.compat.promisifier",
        "WebSocketPromisifier",
        "promisifier.compat.websocket_promisifier",
        "WebSocketPromisifier",
    ),
]


@pytest.mark.parametrize(("former_module", "former", "module", "name"), RENAMED)
def test_a_former_name_is_the_current_object(former_module, former, module, name):
    current = getattr(importlib.import_module(module), name)
    assert getattr(importlib.import_module(former_module), former) is current
    assert current.__name__ == name


def test_the_embeddable_router_is_the_core_plus_network_entry_points():
    from promisifier import Router
    from promisifier.router import RouterCore

    assert issubclass(Router, RouterCore) and Router is not RouterCore


def test_a_router_sessions_peer_is_its_connection_and_the_connections_peer_its_address():
    memory = MemoryRouter()
    client = memory.join()
    session = client.session
    assert session.peer is session.connection is client
    assert session.connection.peer == client.peer
    memory.assert_idle()


def test_session_details_is_the_sessions_own_description():
    from promisifier.router.meta import session_details

    memory = MemoryRouter()
    session = memory.join().session
    assert session_details(session) == session.details()
    assert session.details()["session"] == session.session_id
    memory.assert_idle()
