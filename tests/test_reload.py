"""Router.reload: realms, roles and permissions change under live sessions."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from promisifier.router import RouterConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from tests.support import connect_autobahn, leave_and_wait, start_router, within

pytestmark = pytest.mark.slow


def _config(*, call_allowed: bool, realms: tuple[str, ...] = ("realm1", "realm2")) -> RouterConfig:
    anonymous = RoleConfig(
        "anonymous",
        (
            Permission("com.", "prefix", call=call_allowed, register=True, publish=True, subscribe=True),
            Permission("wamp.", "prefix", call=True),
        ),
    )
    return RouterConfig(realms=tuple(RealmConfig(name, roles=(anonymous,)) for name in realms))


@pytest_twisted.inlineCallbacks
def test_reload_changes_permissions_for_live_sessions():
    running = yield start_router(_config(call_allowed=True))
    try:
        callee = yield connect_autobahn(running.url)
        caller = yield connect_autobahn(running.url, serializer="msgpack")
        yield callee.register(lambda: "ok", "com.example.proc")
        assert (yield within(caller.call("com.example.proc"))) == "ok"

        running.router.reload(_config(call_allowed=False))
        with pytest.raises(ApplicationError) as info:
            yield within(caller.call("com.example.proc"))
        assert info.value.error == "wamp.error.not_authorized"

        running.router.reload(_config(call_allowed=True))
        assert (yield within(caller.call("com.example.proc"))) == "ok"
        yield leave_and_wait(caller)
        yield leave_and_wait(callee)
    finally:
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_reload_closes_sessions_of_a_removed_realm_and_opens_new_ones():
    running = yield start_router(_config(call_allowed=True, realms=("realm1", "realm2")))
    try:
        doomed = yield connect_autobahn(running.url, realm="realm2")
        running.router.reload(_config(call_allowed=True, realms=("realm1", "realm3")))
        details = yield within(doomed.left)
        assert details.reason == "wamp.close.close_realm"
        yield within(doomed.disconnected)
        newcomer = yield connect_autobahn(running.url, realm="realm3")
        assert newcomer.join_details.realm == "realm3"
        yield leave_and_wait(newcomer)
        assert running.router.state_counts()["sessions"] == 0
    finally:
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_reload_closes_sessions_whose_role_was_removed():
    running = yield start_router(_config(call_allowed=True))
    try:
        session = yield connect_autobahn(running.url)
        other_role = RoleConfig("operator", (Permission("", "prefix", call=True),))
        running.router.reload(RouterConfig(realms=(RealmConfig("realm1", roles=(other_role,)),)))
        details = yield within(session.left)
        assert details.reason == "wamp.close.close_realm"
        yield within(session.disconnected)
    finally:
        yield running.stop()
