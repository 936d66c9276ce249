"""Adding up the status figures of a relay's workers (``--workers N``), in memory."""

from __future__ import annotations

from promisifier.relay.worker_status import MAX_ROWS, merge_snapshots


def snapshot(node: str, sessions: int, calls: int, rows: int = 1) -> dict:
    return {
        "relay": {"cluster": {"node": node}, "pid": hash(node) % 1000, "serving": True, "uptime": 5.0},
        "totals": {"sessions": sessions, "calls": {"result": calls, "error": 1}, "calls_total": calls + 1},
        "traffic": {"json": {"messages_in": 10}, "msgpack": {"messages_in": sessions}},
        "realms": [
            {
                "name": "realm1",
                "counts": {"sessions": sessions},
                "calls": {"result": calls},
                "call_latency": {"count": calls, "sum": 0.5, "buckets": [[0.001, calls], [0.01, calls]]},
                "events_published": 3,
                "sessions": [{"id": f"{node}-{n}"} for n in range(rows)],
                "registrations": [],
                "subscriptions": [{"uri": "com.t"}],
            }
        ],
    }


def test_figures_add_up_and_rows_name_their_worker():
    merged = merge_snapshots(snapshot("r/w0", 2, 10), [snapshot("r/w1", 3, 5)])
    assert merged["relay"]["cluster"]["node"] == "r/w0"  # who answered
    assert [(w["node"], w["sessions"]) for w in merged["relay"]["workers"]] == [("r/w0", 2), ("r/w1", 3)]
    assert merged["totals"] == {"sessions": 5, "calls": {"result": 15, "error": 2}, "calls_total": 17}
    assert merged["traffic"] == {"json": {"messages_in": 20}, "msgpack": {"messages_in": 5}}
    (realm,) = merged["realms"]
    assert realm["counts"] == {"sessions": 5} and realm["calls"] == {"result": 15}
    assert realm["call_latency"] == {"count": 15, "sum": 1.0, "buckets": [[0.001, 15], [0.01, 15]]}
    assert realm["events_published"] == 6
    assert [(row["id"], row["worker"]) for row in realm["sessions"]] == [("r/w0-0", "r/w0"), ("r/w1-0", "r/w1")]
    assert len(realm["subscriptions"]) == 2


def test_a_lone_worker_is_its_own_total_and_rows_are_capped():
    alone = snapshot("r/w0", 2, 10)
    assert merge_snapshots(alone, [])["totals"] == alone["totals"]
    merged = merge_snapshots(snapshot("r/w0", 1, 1, rows=MAX_ROWS), [snapshot("r/w1", 1, 1, rows=10)])
    assert len(merged["realms"][0]["sessions"]) == MAX_ROWS


def test_a_realm_only_another_worker_has_is_listed():
    other = snapshot("r/w1", 1, 1)
    other["realms"][0]["name"] = "realm2"
    merged = merge_snapshots(snapshot("r/w0", 1, 1), [other])
    assert [realm["name"] for realm in merged["realms"]] == ["realm1", "realm2"]
