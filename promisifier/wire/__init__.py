"""The WAMP v2 wire layer: messages, serializers, URIs and IDs.

Pure Python: nothing here imports Twisted or the rest of the package. Everything a
remote peer sends is checked here exactly once.
"""

from promisifier.wire.errors import DecodeError, EncodeError, ProtocolError
from promisifier.wire.ids import MAX_ID, IdSequence, fast_random_id, is_id, random_id
from promisifier.wire.messages import Message, MessageType, check_message, message_name
from promisifier.wire.serializers import (
    SERIALIZERS,
    JsonSerializer,
    MsgpackSerializer,
    Serializer,
    serializer_for_subprotocol,
)
from promisifier.wire.uris import LIMIT_EXCEEDED, ErrorURI, check_uri, is_valid_uri

__all__ = [
    "DecodeError",
    "EncodeError",
    "ErrorURI",
    "IdSequence",
    "JsonSerializer",
    "LIMIT_EXCEEDED",
    "MAX_ID",
    "Message",
    "MessageType",
    "MsgpackSerializer",
    "ProtocolError",
    "SERIALIZERS",
    "Serializer",
    "check_message",
    "check_uri",
    "fast_random_id",
    "is_id",
    "is_valid_uri",
    "message_name",
    "random_id",
    "serializer_for_subprotocol",
]
