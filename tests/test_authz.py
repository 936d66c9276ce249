"""Authorization on the router: roles x actions x match kinds, driven by autobahn-python.

Sessions authenticate with a ticket whose authid names their role (``role/name``), so
any role of the realm is at hand. A permission decides with best-match semantics (exact,
then longest prefix, then wildcard), as call routing does. Denied REGISTER, CALL,
SUBSCRIBE and acknowledged PUBLISH get ERROR wamp.error.not_authorized; a denied PUBLISH
without acknowledge is dropped and counted in ``realm.denied_publications``.

To show that an event did *not* arrive, a second event that must arrive is published
after it through the same router and waited for; nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp import message as ab_message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import defer, reactor, task

from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from tests.auth_support import Routers, application_error, connect_auth, leave
from tests.support import within

pytestmark = pytest.mark.slow

NOT_AUTHORIZED = "wamp.error.not_authorized"
ACTIONS = ("call", "register", "publish", "subscribe")
KINDS = ("exact", "prefix", "wildcard")
ALL = dict(call=True, register=True, publish=True, subscribe=True)

#: the pattern each match kind's roles are granted
PATTERNS = {"exact": "com.example.exact.proc", "prefix": "com.example.prefix.", "wildcard": "com.example..thing"}
#: a URI the pattern matches
MATCHED = {"exact": "com.example.exact.proc", "prefix": "com.example.prefix.a.b", "wildcard": "com.example.any.thing"}
#: another URI it matches (for the pattern kinds)
MATCHED_TOO = {"prefix": "com.example.prefix.zz", "wildcard": "com.example.other.thing"}
#: URIs it does not match (near misses)
UNMATCHED = {
    "exact": ("com.example.exact.proc.sub", "com.example.exact.pro"),
    "prefix": ("com.example.prefix", "com.example.prefi.x"),
    "wildcard": ("com.example.any.other", "com.example.a.b.thing"),
}

# -- dynamic authorizers --------------------------------------------------------------

#: every question a dynamic authorizer was asked: (session details, uri, action)
asked: list[tuple[dict, str, str]] = []
#: decides com.dyn.gate for the dynamic authorizers (answers are not cached)
gate = {"open": True}


def decide(details: dict, uri: str, action: str) -> Any:
    asked.append((details, uri, action))
    if uri.startswith("com.dyn.ok"):
        return True
    if uri == "com.dyn.gate":
        return gate["open"]
    if uri == "com.dyn.truthy":
        return 1  # only True allows
    if uri == "com.dyn.raise":
        raise RuntimeError("authorizer crashed")
    return False


def sync_authorizer(details: dict, uri: str, action: str) -> Any:
    """Named by dotted path in the config."""
    return decide(details, uri, action)


def async_authorizer(details: dict, uri: str, action: str) -> defer.Deferred:
    """Answers on a later reactor turn (its failure, for com.dyn.raise, too)."""
    return task.deferLater(reactor, 0, decide, details, uri, action)


# -- the realm ---------------------------------------------------------------------------

ROLES = (
    RoleConfig("root", (Permission("", "prefix", **ALL),)),
    *(
        RoleConfig(f"{kind}-{action}", (Permission(PATTERNS[kind], kind, **{action: True}),))
        for kind in KINDS
        for action in ACTIONS
    ),
    RoleConfig(
        "layered",
        (
            Permission("com.app.", "prefix", **ALL),
            Permission("com.app.admin", "exact"),  # nothing allowed
            Permission("com.app.secret.", "prefix"),  # nothing allowed
            Permission("com.app.secret.open.", "prefix", **ALL),
            Permission("com.app.audit", "exact", subscribe=True),
            Permission("com..public", "wildcard", **ALL),
            Permission("org.", "prefix"),  # nothing allowed
            Permission("org..public", "wildcard", **ALL),
        ),
    ),
    RoleConfig("pub-limited", (Permission("com.pub.ok", "exact", publish=True),)),
    RoleConfig(
        "disclosed",
        (Permission("com.disc.", "prefix", call=True, publish=True, disclose_caller=True, disclose_publisher=True),),
    ),
    RoleConfig("hidden", (Permission("com.disc.", "prefix", call=True, publish=True),)),
    RoleConfig("no-meta", (Permission("com.", "prefix", **ALL),)),
    RoleConfig(
        "meta-count", (Permission("com.", "prefix", **ALL), Permission("wamp.session.count", "exact", call=True))
    ),
    RoleConfig("dyn-sync", authorizer=f"{__name__}.sync_authorizer"),
    RoleConfig("dyn-async", authorizer=async_authorizer),
)


def role_of_authid(realm: str, authid: str, ticket: str, details: dict) -> Any:
    return {"role": authid.split("/")[0], "authid": authid} if ticket == "pw" else None


CONFIG = RouterConfig(
    realms=(RealmConfig("realm1", roles=ROLES),),
    auth=AuthConfig(methods=("ticket",), ticket_authenticator=role_of_authid),
)


@pytest_twisted.async_yield_fixture
async def relay():
    asked.clear()
    gate["open"] = True
    routers = Routers()
    yield await routers.start(CONFIG)
    await routers.stop_all()


def as_role(relay: Any, role: str, ser: str = "json", name: str = "s") -> defer.Deferred:
    return connect_auth(relay.url, serializer=ser, authmethods=["ticket"], authid=f"{role}/{name}", secret="pw")


def realm_of(relay: Any) -> Any:
    return relay.router.realms["realm1"]


class Inbox:
    """Events of one handler, waitable one by one."""

    def __init__(self) -> None:
        self.events: list[tuple[tuple, dict]] = []
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.events.append((args, kwargs))
        for waiter in [w for w in self._waiters if len(self.events) >= w[0]]:
            self._waiters.remove(waiter)
            waiter[1].callback(None)

    def wait_for(self, count: int) -> defer.Deferred:
        if len(self.events) >= count:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((count, d))
        return within(d)


async def attempt(actor: Any, root: Any, action: str, uri: str) -> str:
    """Try ``action`` on ``uri`` as ``actor`` (``root`` plays the other side).

    "granted" when it went through end to end, else the error URI. Cleans up after itself.
    """
    try:
        if action == "call":
            registration = await root.register(lambda: "answer", uri)
            try:
                assert await within(actor.call(uri)) == "answer"
            finally:
                await registration.unregister()
        elif action == "register":
            registration = await within(actor.register(lambda: "from actor", uri))
            assert await within(root.call(uri)) == "from actor"
            await registration.unregister()
        elif action == "subscribe":
            inbox = Inbox()
            subscription = await within(actor.subscribe(inbox, uri))
            await within(root.publish(uri, "hello", options=PublishOptions(acknowledge=True)))
            await inbox.wait_for(1)
            await subscription.unsubscribe()
        elif action == "publish":
            inbox = Inbox()
            subscription = await root.subscribe(inbox, uri)
            try:
                await within(actor.publish(uri, "hello", options=PublishOptions(acknowledge=True)))
                await inbox.wait_for(1)
            finally:
                await subscription.unsubscribe()
        else:
            raise ValueError(action)
    except ApplicationError as error:
        return error.error
    return "granted"


# -- the matrix --------------------------------------------------------------------------


@pytest.mark.parametrize("ser", ["json", "msgpack"])
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_permission_matrix(relay, kind, action, ser):
    root = await as_role(relay, "root")
    actor = await as_role(relay, f"{kind}-{action}", ser)
    matched = MATCHED[kind]
    # denied first: outside the pattern, and the other actions inside it
    for uri in UNMATCHED[kind]:
        assert await attempt(actor, root, action, uri) == NOT_AUTHORIZED, uri
    for other in ACTIONS:
        if other != action:
            assert await attempt(actor, root, other, matched) == NOT_AUTHORIZED, other
    # the session is still usable: the granted action goes through, end to end
    assert await attempt(actor, root, action, matched) == "granted"
    if kind in MATCHED_TOO:
        assert await attempt(actor, root, action, MATCHED_TOO[kind]) == "granted"
    # denials left no routing state behind
    counts = relay.router.state_counts()
    assert (counts["registrations"], counts["subscriptions"], counts["pending_calls"]) == (0, 0, 0)
    assert realm_of(relay).denied_publications == 0  # every PUBLISH here asked for acknowledge
    await leave(actor)
    await leave(root)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("com.app.x", "granted"),
        ("com.app.admin", NOT_AUTHORIZED),  # an exact deny beats the broad prefix allow
        ("com.app.admin.x", "granted"),  # exact is exact: the prefix allow governs this one
        ("com.app.secret.x", NOT_AUTHORIZED),  # the longer prefix decides
        ("com.app.secret.open.x", "granted"),  # and a still longer one
        ("com.other.public", "granted"),  # wildcard, no prefix or exact applies
        ("org.x.public", NOT_AUTHORIZED),  # a prefix beats a wildcard
        ("com.app.audit", NOT_AUTHORIZED),  # the exact permission grants subscribe only
    ],
)
@pytest_twisted.ensureDeferred
async def test_best_match_decides(relay, uri, expected):
    root = await as_role(relay, "root")
    actor = await as_role(relay, "layered", "msgpack")
    assert await attempt(actor, root, "call", uri) == expected
    assert await attempt(actor, root, "publish", uri) == expected
    await leave(actor)
    await leave(root)


@pytest_twisted.ensureDeferred
async def test_best_match_is_per_action(relay):
    root = await as_role(relay, "root")
    actor = await as_role(relay, "layered")
    assert await attempt(actor, root, "subscribe", "com.app.audit") == "granted"
    assert await attempt(actor, root, "register", "com.app.audit") == NOT_AUTHORIZED
    assert await attempt(actor, root, "subscribe", "com.app.admin") == NOT_AUTHORIZED
    await leave(actor)
    await leave(root)


@pytest_twisted.ensureDeferred
async def test_pattern_requests_inside_a_granted_prefix(relay):
    root = await as_role(relay, "root")
    actor = await as_role(relay, "prefix-subscribe")
    inbox = Inbox()
    await within(actor.subscribe(inbox, "com.example.prefix.sub", options=SubscribeOptions(match="prefix")))
    await within(actor.subscribe(inbox, "com.example.prefix..x", options=SubscribeOptions(match="wildcard")))
    # a pattern reaching outside the granted prefix is denied
    error = await application_error(actor.subscribe(inbox, "com.example", options=SubscribeOptions(match="prefix")))
    assert error.error == NOT_AUTHORIZED
    error = await application_error(actor.subscribe(inbox, "com..x", options=SubscribeOptions(match="wildcard")))
    assert error.error == NOT_AUTHORIZED
    await within(root.publish("com.example.prefix.sub.y", options=PublishOptions(acknowledge=True)))
    await within(root.publish("com.example.prefix.w.x", options=PublishOptions(acknowledge=True)))
    await inbox.wait_for(2)
    await leave(actor)
    await leave(root)


# -- pattern requests must not reach beyond what the role may do ---------------------------


@pytest_twisted.ensureDeferred
async def test_prefix_subscription_cannot_widen_an_exact_subscribe_permission(relay):
    """A role allowed to subscribe to exactly X must not get events of X.secret through a
    prefix subscription on X (either the SUBSCRIBE is denied or those events are withheld)."""
    root = await as_role(relay, "root")
    actor = await as_role(relay, "exact-subscribe")
    exact = PATTERNS["exact"]
    inbox = Inbox()
    try:
        await within(actor.subscribe(inbox, exact, options=SubscribeOptions(match="prefix", details=True)))
    except ApplicationError as error:
        assert error.error == NOT_AUTHORIZED
    else:
        await within(root.publish(exact + ".secret", "secret", options=PublishOptions(acknowledge=True)))
        await within(root.publish(exact, "allowed", options=PublishOptions(acknowledge=True)))
        await inbox.wait_for(1)
        received = [args for args, _ in inbox.events]
        assert ("secret",) not in received, f"{exact}.secret reached a role that may only subscribe to {exact}"
    await leave(actor)
    await leave(root)


@pytest_twisted.ensureDeferred
async def test_prefix_registration_cannot_widen_an_exact_register_permission(relay):
    """A role allowed to register exactly X must not receive calls to X.admin through a
    prefix registration on X."""
    root = await as_role(relay, "root")
    actor = await as_role(relay, "exact-register")
    exact = PATTERNS["exact"]
    invoked: list[str] = []

    def callee(*args: Any, details: Any = None) -> str:
        invoked.append(details.procedure if details is not None else exact)
        return "from actor"

    try:
        await within(actor.register(callee, exact, options=RegisterOptions(match="prefix", details=True)))
    except ApplicationError as error:
        assert error.error == NOT_AUTHORIZED
    else:
        try:
            await within(root.call(exact + ".admin"))
        except ApplicationError as error:
            assert error.error == "wamp.error.no_such_procedure"
        assert exact + ".admin" not in invoked, f"{exact}.admin was routed to a role that may only register {exact}"
    await leave(actor)
    await leave(root)


@pytest_twisted.ensureDeferred
async def test_prefix_subscription_cannot_bypass_a_more_specific_deny(relay):
    """layered may subscribe under com.app. but not to com.app.admin: a prefix subscription
    on com.app.ad must not deliver com.app.admin events to it."""
    root = await as_role(relay, "root")
    actor = await as_role(relay, "layered")
    inbox = Inbox()
    try:
        await within(actor.subscribe(inbox, "com.app.ad", options=SubscribeOptions(match="prefix")))
    except ApplicationError as error:
        assert error.error == NOT_AUTHORIZED
    else:
        await within(root.publish("com.app.admin", "secret", options=PublishOptions(acknowledge=True)))
        await within(root.publish("com.app.adx", "allowed", options=PublishOptions(acknowledge=True)))
        await inbox.wait_for(1)
        assert ("secret",) not in [args for args, _ in inbox.events], "com.app.admin reached a role denied it"
    await leave(actor)
    await leave(root)


# -- publish without acknowledge -------------------------------------------------------------


@pytest.mark.parametrize("ser", ["json", "msgpack"])
@pytest_twisted.ensureDeferred
async def test_denied_publish_without_acknowledge_is_dropped_and_counted(relay, ser):
    root = await as_role(relay, "root")
    actor = await as_role(relay, "pub-limited", ser)
    inbox = Inbox()
    await root.subscribe(inbox, "com.pub", options=SubscribeOptions(match="prefix", details=True))

    actor.publish("com.pub.denied", "dropped-1")
    actor.publish("com.pub.denied", "dropped-2")
    await within(actor.publish("com.pub.ok", "delivered", options=PublishOptions(acknowledge=True)))
    await inbox.wait_for(1)
    assert [args for args, _ in inbox.events] == [("delivered",)]
    assert realm_of(relay).denied_publications == 2
    # no ERROR came back for the silent ones
    assert not [m for m in actor.received if isinstance(m, ab_message.Error)]

    # acknowledged: an ERROR, not counted as dropped
    error = await application_error(actor.publish("com.pub.denied", options=PublishOptions(acknowledge=True)))
    assert error.error == NOT_AUTHORIZED
    assert realm_of(relay).denied_publications == 2
    # still usable
    await within(actor.publish("com.pub.ok", "again", options=PublishOptions(acknowledge=True)))
    await inbox.wait_for(2)
    assert [args for args, _ in inbox.events] == [("delivered",), ("again",)]
    await leave(actor)
    await leave(root)


# -- disclosure forced by permission -----------------------------------------------------------


async def _disclosure_setup(relay: Any) -> tuple[Any, Inbox]:
    root = await as_role(relay, "root")
    await root.register(
        lambda details=None: [details.caller, details.caller_authid, details.caller_authrole],
        "com.disc.proc",
        options=RegisterOptions(details=True),
    )
    inbox = Inbox()
    await root.subscribe(inbox, "com.disc.topic", options=SubscribeOptions(details=True))
    return root, inbox


def _publisher_of(event: tuple[tuple, dict]) -> list[Any]:
    details = event[1]["details"]
    return [details.publisher, details.publisher_authid, details.publisher_authrole]


@pytest.mark.parametrize("ser", ["json", "msgpack"])
@pytest_twisted.ensureDeferred
async def test_disclose_caller_and_publisher_forced_by_permission(relay, ser):
    root, inbox = await _disclosure_setup(relay)
    disclosed = await as_role(relay, "disclosed", ser, name="d")
    hidden = await as_role(relay, "hidden", ser, name="h")

    assert await within(disclosed.call("com.disc.proc")) == [disclosed.session_id, "disclosed/d", "disclosed"]
    assert await within(hidden.call("com.disc.proc")) == [None, None, None]

    await within(disclosed.publish("com.disc.topic", options=PublishOptions(acknowledge=True)))
    await within(hidden.publish("com.disc.topic", options=PublishOptions(acknowledge=True)))
    await inbox.wait_for(2)
    assert _publisher_of(inbox.events[0]) == [disclosed.session_id, "disclosed/d", "disclosed"]
    assert _publisher_of(inbox.events[1]) == [None, None, None]
    await leave(disclosed)
    await leave(hidden)
    await leave(root)


@pytest_twisted.ensureDeferred
async def test_disclose_publisher_forced_for_a_publish_without_options(relay):
    """The permission forces disclosure whatever the PUBLISH carries, also Options {}."""
    root, inbox = await _disclosure_setup(relay)
    disclosed = await as_role(relay, "disclosed", name="d")
    disclosed.publish("com.disc.topic", "bare")  # Options {}
    await within(disclosed.publish("com.disc.topic", "acked", options=PublishOptions(acknowledge=True)))
    await inbox.wait_for(2)
    assert [args for args, _ in inbox.events] == [("bare",), ("acked",)]
    assert _publisher_of(inbox.events[1]) == [disclosed.session_id, "disclosed/d", "disclosed"]
    assert _publisher_of(inbox.events[0]) == [disclosed.session_id, "disclosed/d", "disclosed"]
    await leave(disclosed)
    await leave(root)


# -- dynamic authorizers -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["dyn-sync", "dyn-async"])
@pytest_twisted.ensureDeferred
async def test_dynamic_authorizer(relay, role):
    root = await as_role(relay, "root")
    actor = await as_role(relay, role, "msgpack")
    for action in ACTIONS:
        assert await attempt(actor, root, action, f"com.dyn.ok.{action}") == "granted", action
        assert await attempt(actor, root, action, "com.dyn.no") == NOT_AUTHORIZED, action
    # only True allows; an authorizer that raises denies (and the router goes on)
    assert await attempt(actor, root, "call", "com.dyn.truthy") == NOT_AUTHORIZED
    assert await attempt(actor, root, "call", "com.dyn.raise") == NOT_AUTHORIZED

    # answers are not cached: the authorizer is asked again each time
    assert await attempt(actor, root, "call", "com.dyn.gate") == "granted"
    gate["open"] = False
    assert await attempt(actor, root, "call", "com.dyn.gate") == NOT_AUTHORIZED

    # denied PUBLISH without acknowledge: dropped and counted, also when decided later
    inbox = Inbox()
    await root.subscribe(inbox, "com.dyn", options=SubscribeOptions(match="prefix"))
    actor.publish("com.dyn.no", "dropped")
    await within(actor.publish("com.dyn.ok.after", "delivered", options=PublishOptions(acknowledge=True)))
    await inbox.wait_for(1)
    assert [args for args, _ in inbox.events] == [("delivered",)]
    assert realm_of(relay).denied_publications == 1

    # the authorizer saw the session and each action
    details, uri, action = asked[0]
    assert (uri, action) == ("com.dyn.ok.call", "call")
    assert details["session"] == actor.session_id
    assert (details["authid"], details["authrole"], details["authmethod"]) == (f"{role}/s", role, "ticket")
    assert {a for _, _, a in asked} == set(ACTIONS)
    await leave(actor)
    await leave(root)


# -- meta procedures and meta events are authorized too -------------------------------------


@pytest_twisted.ensureDeferred
async def test_meta_procedures_are_subject_to_authorization(relay):
    root = await as_role(relay, "root")
    counter = await as_role(relay, "meta-count")
    outsider = await as_role(relay, "no-meta", "msgpack")

    assert await within(root.call("wamp.session.count")) == 3
    assert await within(counter.call("wamp.session.count")) == 3
    denied = (
        (outsider, "wamp.session.count", ()),
        (counter, "wamp.session.list", ()),
        (outsider, "wamp.session.kill", (root.session_id,)),
    )
    for session, procedure, args in denied:
        error = await application_error(session.call(procedure, *args))
        assert error.error == NOT_AUTHORIZED, procedure
    # meta events too
    error = await application_error(outsider.subscribe(lambda *a: None, "wamp.session.on_join"))
    assert error.error == NOT_AUTHORIZED
    # the root session was not killed, and the outsider is still usable
    assert root.is_attached()
    assert await attempt(outsider, root, "call", "com.fine") == "granted"
    await leave(outsider)
    await leave(counter)
    await leave(root)
