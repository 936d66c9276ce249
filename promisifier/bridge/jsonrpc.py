"""The rpc-websockets dialect of JSON-RPC 2.0: error codes, requests and responses.

The messages are those of the ``rpc-websockets`` Node server: requests
``{"jsonrpc": "2.0", "method", "params", "id"}`` (a request without ``id``, or with
``id: null``, is a notification), responses ``{"jsonrpc": "2.0", "result" | "error", "id"}``
and server events ``{"notification": name, "params": params}``. An error is
``{"code", "message"}`` plus ``data`` when there is any, the message taken from the table
below for the dialect's own codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PARAMS_NOT_FOUND = -32604
METHOD_FORBIDDEN = -32605
EVENT_FORBIDDEN = -32606
#: -32000 is both "no event names given" (rpc.on/rpc.off) and a method's own error
SERVER_ERROR = -32000

#: the message of each code, as the Node server words it
MESSAGES = {
    SERVER_ERROR: "Event not provided",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    PARAMS_NOT_FOUND: "Params not found",
    METHOD_FORBIDDEN: "Method forbidden",
    EVENT_FORBIDDEN: "Event forbidden",
    PARSE_ERROR: "Parse error",
}

#: the answers of ``rpc.on`` / ``rpc.off`` per event name
EVENT_OK = "ok"
EVENT_INVALID = "provided event invalid"
EVENT_ALREADY_SUBSCRIBED = "socket has already been subscribed to event"
EVENT_NOT_SUBSCRIBED = "not subscribed"

#: the methods the dialect itself answers
SUBSCRIBE_METHOD = "rpc.on"
UNSUBSCRIBE_METHOD = "rpc.off"
LOGIN_METHOD = "rpc.login"
LIST_METHODS = "__listMethods"


def error(code: int, data: Any = None, message: str | None = None) -> dict[str, Any]:
    """An error object; ``data`` is left out when None."""
    body: dict[str, Any] = {"code": code, "message": message if message is not None else MESSAGES[code]}
    if data is not None:
        body["data"] = data
    return body


def error_response(request_id: Any, code: int, data: Any = None) -> dict[str, Any]:
    """A response carrying one of the dialect's own errors."""
    return {"jsonrpc": "2.0", "error": error(code, data), "id": request_id}


def result_response(request_id: Any, result: Any) -> dict[str, Any]:
    """A successful response."""
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def notification(name: str, params: Any) -> dict[str, Any]:
    """A server event as rpc-websockets clients receive it."""
    return {"notification": name, "params": params}


@dataclass(frozen=True, slots=True)
class Request:
    """One request that passed :func:`parse_request`."""

    method: str
    #: list, dict or None (no params)
    params: Any
    #: None for a notification
    id: Any

    @property
    def is_notification(self) -> bool:
        return self.id is None


def parse_request(message: Any) -> Request | dict[str, Any]:
    """The request in ``message``, or the error response the Node server sends for it.

    The checks and their order are the Node server's: not an object (-32600), wrong
    ``jsonrpc`` (-32600), no method (-32602 "Method not specified"), a method that is not
    a string (-32600), params that are a string (-32600).
    """
    if type(message) is list:
        # an array is a JavaScript object without "jsonrpc": the Node server's next check
        return error_response(None, INVALID_REQUEST, "Invalid JSON RPC version")
    if type(message) is not dict:
        return error_response(None, INVALID_REQUEST)
    request_id = message.get("id")
    if type(request_id) not in (str, int, float) or type(request_id) is bool:
        request_id = None
    if message.get("jsonrpc") != "2.0":
        return error_response(request_id, INVALID_REQUEST, "Invalid JSON RPC version")
    method = message.get("method")
    if method is None or method == "" or method is False or method == 0:
        return error_response(request_id, INVALID_PARAMS, "Method not specified")
    if type(method) is not str:
        return error_response(request_id, INVALID_REQUEST, "Invalid method name")
    params = message.get("params")
    if type(params) is str:
        if params:
            return error_response(request_id, INVALID_REQUEST)
        params = None
    if params is not None and type(params) not in (list, dict):
        params = [params]
    return Request(method, params, request_id)
