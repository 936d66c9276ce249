"""The rpc-websockets dialect in memory: request checks (hypothesis: anything decoded from
JSON or msgpack gives a Request or the Node server's error response, never an exception)
and the WAMP <-> JSON-RPC value mapping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from promisifier.bridge import jsonrpc
from promisifier.bridge.rpc_websockets import _error_body, _event_params, _result_value, login_credentials

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | values,
        "method": st.sampled_from(["sum", "rpc.on", "", "a b"]) | values,
        "params": values,
        "id": values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(values, requests))
def test_any_decoded_value_is_a_request_or_an_error_response(message):
    parsed = jsonrpc.parse_request(message)
    if isinstance(parsed, jsonrpc.Request):
        assert type(parsed.method) is str and parsed.method
        assert parsed.params is None or type(parsed.params) in (list, dict)
    else:
        assert parsed["jsonrpc"] == "2.0" and set(parsed) == {"jsonrpc", "error", "id"}
        assert parsed["error"]["code"] in jsonrpc.MESSAGES
        assert parsed["error"]["message"] == jsonrpc.MESSAGES[parsed["error"]["code"]]


def test_the_node_servers_checks_in_order():
    assert jsonrpc.parse_request({"jsonrpc": "2.0", "method": "m", "params": [1], "id": 3}) == jsonrpc.Request(
        "m", [1], 3
    )
    assert jsonrpc.parse_request({"jsonrpc": "2.0", "method": "m"}).is_notification
    assert jsonrpc.parse_request({"jsonrpc": "2.0", "method": "m", "id": None}).is_notification
    assert not jsonrpc.parse_request({"jsonrpc": "2.0", "method": "m", "id": 0}).is_notification
    assert jsonrpc.parse_request({"jsonrpc": "2.0", "method": "m", "params": 5}).params == [5]
    assert jsonrpc.parse_request({"jsonrpc": "2.0", "method": "m", "params": ""}).params is None
    assert jsonrpc.parse_request({"method": 5, "id": 1})["error"]["data"] == "Invalid JSON RPC version"
    assert jsonrpc.parse_request({"jsonrpc": "2.0", "method": 0, "id": 1})["error"]["code"] == -32602


def test_results_events_and_errors_map_from_wamp():
    assert _result_value([5], None) == 5
    assert _result_value([1, 2], {}) == [1, 2]
    assert _result_value([], {"a": 1}) == {"a": 1}
    assert _result_value([1], {"a": 1}) == {"args": [1], "kwargs": {"a": 1}}
    assert _result_value(None, None) is None
    assert _event_params([{"a": 1}], None) == {"a": 1}
    assert _event_params([1, 2], None) == [1, 2]
    assert _event_params(None, {"a": 1}) == {"a": 1}
    assert _event_params([1], {"a": 1}) == [1, {"a": 1}]
    assert _event_params(None, None) == []
    assert _error_body([8, 48, 1, {}, "wamp.error.no_such_procedure", ["x"]]) == {
        "code": -32601,
        "message": "Method not found",
    }
    assert _error_body([8, 48, 1, {}, "wamp.error.not_authorized"])["code"] == -32605
    assert _error_body([8, 48, 1, {}, "com.x.oops", ["bad"], {"n": 1}]) == {
        "code": -32000,
        "message": "com.x.oops",
        "data": {"args": ["bad"], "kwargs": {"n": 1}},
    }
    structured = [8, 48, 1, {}, "promisifier.rpc.error", ["m"], {"code": -32001, "message": "m", "data": [1]}]
    assert _error_body(structured) == {"code": -32001, "message": "m", "data": [1]}


def test_login_credentials():
    assert login_credentials({"authid": "alice", "ticket": "t"}) == ("alice", "t")
    assert login_credentials({"username": "ann", "password": "pw"}) == ("ann", '{"username":"ann","password":"pw"}')
    assert login_credentials(["not", "an", "object"]) is None
