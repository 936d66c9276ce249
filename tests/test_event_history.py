"""Event history (wamp.subscription.get_events) and gap-free resume (SUBSCRIBE._resume),
routed in memory (over sockets, with autobahn-python and our reconnecting Client:
test_advanced_profile_sockets)."""

from __future__ import annotations

import pytest

from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.history import HistoryRule
from promisifier.router.router_config import RealmConfig
from promisifier.wire.messages import RESULT, SUBSCRIBE, SUBSCRIBED
from tests.advanced_memory import Memory


def history_realm(*rules: HistoryRule, **config) -> RealmConfig:
    return RealmConfig("realm1", history=rules, **config)


def get_events(session, subscription_id, **filters) -> list[dict]:
    call_id = session.call("wamp.subscription.get_events", [subscription_id], filters)
    answer = session.answers_to(call_id)[0]
    assert answer[0] == RESULT, answer
    return answer[3][0]


def publish_n(publisher, topic, count, start=0, **options):
    for n in range(start, start + count):
        publisher.publish(topic, [n], **options)


# -- wamp.subscription.get_events ----------------------------------------------------------------


def test_history_of_exact_and_prefix_subscriptions_as_the_spec_example():
    memory = Memory(history_realm(HistoryRule("com.mycompany.log", "prefix", limit=100)))
    watcher, publisher = memory.join(), memory.join()
    auth = watcher.subscribe("com.mycompany.log.auth")
    basket = watcher.subscribe("com.mycompany.log.basket")
    log = watcher.subscribe("com.mycompany.log", match="prefix")
    for topic in ("auth", "basket", "basket", "basket", "checkout"):
        publisher.publish(f"com.mycompany.log.{topic}", [topic])
    assert [e["args"] for e in get_events(watcher, auth)] == [["auth"]]
    assert [e["args"] for e in get_events(watcher, basket)] == [["basket"]] * 3
    events = get_events(watcher, log)
    assert [e["args"][0] for e in events] == ["auth", "basket", "basket", "basket", "checkout"]
    first = events[0]
    assert first["subscription"] == log and first["details"]["topic"] == "com.mycompany.log.auth"
    assert first["timestamp"].endswith("Z") and type(first["publication"]) is int
    assert [e["details"]["_offset"] for e in events] == [1, 1, 2, 3, 1]  # per topic


def test_get_events_filters():
    memory = Memory(history_realm(HistoryRule("com.t", limit=100)))
    watcher, publisher = memory.join(), memory.join()
    sub = watcher.subscribe("com.t")
    for n in range(10):
        publisher.publish("com.t", [n])
        memory.advance(1.0)
    events = get_events(watcher, sub)
    publications = [e["publication"] for e in events]
    args = lambda found: [e["args"][0] for e in found]  # noqa: E731
    assert args(get_events(watcher, sub, limit=3)) == [0, 1, 2]
    assert args(get_events(watcher, sub, reverse=True, limit=2)) == [9, 8]
    assert args(get_events(watcher, sub, from_publication=publications[4])) == [4, 5, 6, 7, 8, 9]
    assert args(get_events(watcher, sub, after_publication=publications[4], limit=2)) == [5, 6]
    assert args(get_events(watcher, sub, before_publication=publications[2])) == [0, 1]
    assert args(get_events(watcher, sub, until_publication=publications[2], reverse=True)) == [2, 1, 0]
    stamp = events[3]["timestamp"]
    assert args(get_events(watcher, sub, from_time=stamp, until_time=events[5]["timestamp"])) == [3, 4, 5]
    assert args(get_events(watcher, sub, after_time=stamp, before_time=events[5]["timestamp"])) == [4]
    assert args(get_events(watcher, sub, topic="com.other")) == []
    for bad in ({"limit": 0}, {"reverse": "yes"}, {"from_time": "yesterday"}, {"nonsense": 1}):
        call_id = watcher.call("wamp.subscription.get_events", [sub], bad)
        assert watcher.answers_to(call_id)[0][4] == "wamp.error.invalid_argument", bad


def test_history_limit_max_age_and_memory_cap():
    memory = Memory(history_realm(HistoryRule("com.a", limit=5), HistoryRule("com.b", max_age=10)))
    watcher, publisher = memory.join(), memory.join()
    a, b = watcher.subscribe("com.a"), watcher.subscribe("com.b")
    publish_n(publisher, "com.a", 8)
    assert [e["args"][0] for e in get_events(watcher, a)] == [3, 4, 5, 6, 7]
    publisher.publish("com.b", ["old"])
    memory.advance(11)
    publisher.publish("com.b", ["new"])
    assert [e["args"][0] for e in get_events(watcher, b)] == ["new"]

    capped = Memory(history_realm(HistoryRule("com.c", limit=1000), max_history_bytes=20_000))
    watcher, publisher = capped.join(), capped.join()
    c = watcher.subscribe("com.c")
    publish_n(publisher, "com.c", 200)
    history = capped.realm().broker.history
    kept = get_events(watcher, c)
    assert history.bytes <= 20_000 and 0 < len(kept) < 200
    assert kept[-1]["args"] == [199]


def test_events_with_session_lists_are_not_kept_and_role_lists_apply_to_who_asks():
    memory = Memory(
        RealmConfig(
            "realm1",
            history=(HistoryRule("com.t"),),
            roles=(RoleConfig("anonymous", (Permission("", "prefix", True, True, True, True),)),),
        )
    )
    watcher, publisher = memory.join(), memory.join()
    sub = watcher.subscribe("com.t")
    publisher.publish("com.t", ["by session"], eligible=[watcher.session_id])
    publisher.publish("com.t", ["admins only"], eligible_authrole=["admin"])
    publisher.publish("com.t", ["everyone"])
    assert [e["args"][0] for e in get_events(watcher, sub)] == ["everyone"]


def test_get_events_needs_the_right_to_subscribe():
    everything = Permission("", "prefix", call=True, register=True, publish=True, subscribe=True)
    memory = Memory(
        RealmConfig(
            "realm1",
            history=(HistoryRule("com.", "prefix"),),
            roles=(
                RoleConfig(
                    "anonymous",
                    (
                        Permission("wamp.subscription.get_events", "exact", call=True),
                        Permission("com.public.", "prefix", subscribe=True),
                    ),
                ),
                RoleConfig("admin", (everything,)),
            ),
        )
    )
    user, admin = memory.join(), memory.join()
    admin.session.authrole = "admin"
    public = user.subscribe("com.public.news")
    secret = admin.subscribe("com.secret.plans")
    admin.publish("com.public.news", ["hello"])
    admin.publish("com.secret.plans", ["plan"])
    assert [e["args"] for e in get_events(user, public)] == [["hello"]]
    call_id = user.call("wamp.subscription.get_events", [secret])
    assert user.answers_to(call_id)[0][4] == "wamp.error.not_authorized"
    assert [e["args"] for e in get_events(admin, secret)] == [["plan"]]


# -- gap-free resume ----------------------------------------------------------------------------------


def resume(session, topic, epoch, offset):
    request_id = session.request_id()
    session.send_raw([SUBSCRIBE, request_id, {"_resume": {"epoch": epoch, "offset": offset}}, topic])
    return next(m for m in session.received if m[:2] == [SUBSCRIBED, request_id])


def test_resume_gives_every_missed_event_once_in_order_before_live_ones():
    memory = Memory(history_realm(HistoryRule("com.feed", limit=5000)))
    subscriber, publisher = memory.join(), memory.join()
    subscriber.subscribe("com.feed")
    publish_n(publisher, "com.feed", 10)
    last = subscriber.events()[-1][3]
    assert (last["_offset"], type(last["_epoch"])) == (10, str)
    subscriber.drop()
    publish_n(publisher, "com.feed", 1000, start=10)
    back = memory.join()
    subscribed = resume(back, "com.feed", last["_epoch"], last["_offset"])
    assert subscribed[3] == {"_recovered": True, "_epoch": last["_epoch"], "_offset": 1010}
    publisher.publish("com.feed", ["live"])
    events = back.events()
    assert [e[4][0] for e in events] == [*range(10, 1010), "live"]
    assert all(e[3]["_recovered"] for e in events[:-1]) and "_recovered" not in events[-1][3]
    assert [e[3]["_offset"] for e in events] == list(range(11, 1012))


def test_resume_after_the_history_was_trimmed_is_not_recovered():
    memory = Memory(history_realm(HistoryRule("com.feed", limit=100)))
    subscriber, publisher = memory.join(), memory.join()
    subscriber.subscribe("com.feed")
    publisher.publish("com.feed", [0])
    last = subscriber.events()[-1][3]
    publish_n(publisher, "com.feed", 150, start=1)
    back = memory.join()
    subscribed = resume(back, "com.feed", last["_epoch"], last["_offset"])
    assert subscribed[3]["_recovered"] is False and subscribed[3]["_offset"] == 151
    assert back.events() == []


@pytest.mark.parametrize(("epoch", "offset"), [("another-epoch", 1), (None, 99)])
def test_resume_with_another_epoch_or_a_future_offset_is_not_recovered(epoch, offset):
    memory = Memory(history_realm(HistoryRule("com.feed")))
    publisher = memory.join()
    publisher.publish("com.feed", [1])
    epoch = epoch or memory.realm().broker.history.epoch
    back = memory.join()
    assert resume(back, "com.feed", epoch, offset)[3]["_recovered"] is False


def test_resume_on_a_topic_without_history_is_not_recovered():
    memory = Memory(history_realm(HistoryRule("com.feed")))
    back = memory.join()
    assert resume(back, "com.elsewhere", "x", 0)[3]["_recovered"] is False


def test_a_bad_resume_option_is_invalid_argument():
    memory = Memory(history_realm(HistoryRule("com.feed")))
    session = memory.join()
    session.send_raw([SUBSCRIBE, 1, {"_resume": {"epoch": 1, "offset": "x"}}, "com.feed"])
    assert session.error_of(SUBSCRIBE, 1)[4] == "wamp.error.invalid_argument"
