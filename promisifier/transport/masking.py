"""WebSocket payload masking (RFC 6455 section 5.3): XOR with a 4-octet key, repeated.

Masking and unmasking are the same operation. Three implementations, the first one there:

* the compiled masker of the ``websockets`` library (``websockets.speedups.apply_mask``,
  a C function over the buffer): about 70 ns for the small payloads that make up most
  WAMP traffic, a seventh of the alternatives' time, and the fastest at every size;
* without it: below :data:`COMPILED_FROM` octets, one big-integer XOR in CPython (its
  ``int`` and ``bytes`` conversions are C loops), which beats any call across an FFI for
  a small payload; from there on, the compiled SIMD masker that autobahn builds with
  CFFI (its NVX extension, ``_nvx_xormasker``), called directly: autobahn's own
  ``create_xor_masker`` wrapper allocates a masker object, a copy and a CFFI buffer per
  frame, which costs several times the XOR for a small frame;
* without either (builds without a C compiler), the big-integer XOR for every size.
"""

from __future__ import annotations

try:
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    _apply_mask = None

try:
    from _nvx_xormasker import ffi as _ffi  # type: ignore[import-not-found]
    from _nvx_xormasker import lib as _lib
except ImportError:  # pragma: no cover - autobahn built without its C extensions
    _lib = None

#: payloads of this many octets or more go to the compiled masker (measured crossover ~250)
COMPILED_FROM = 256

#: True when autobahn's compiled masker is importable here
HAS_COMPILED_MASKER = _lib is not None
#: True when the websockets library's compiled masker is importable here
HAS_WEBSOCKETS_MASKER = _apply_mask is not None


def mask(payload: bytes, key: bytes, offset: int = 0) -> bytes:
    """``payload`` XOR-ed with the 4-octet ``key``, starting at key octet ``offset % 4``.

    ``offset`` is the position of ``payload`` within its frame's payload, for a frame
    whose payload arrives in several pieces.
    """
    if offset & 3:
        shift = offset & 3
        key = key[shift:] + key[:shift]
    if _apply_mask is not None:
        return _apply_mask(payload, key)  # type: ignore[no-any-return]
    length = len(payload)
    if length < COMPILED_FROM or _lib is None:
        return _mask_by_int(payload, key, length)
    return _mask_compiled(payload, key, length)


def _mask_by_int(payload: bytes, key: bytes, length: int) -> bytes:
    keystream = (key * ((length >> 2) + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keystream, "little")).to_bytes(length, "little")


def _mask_compiled(payload: bytes, key: bytes, length: int) -> bytes:
    buffer = bytearray(payload)
    masker = _lib.nvx_xormask_new(key)
    if masker == _ffi.NULL:
        raise MemoryError("no memory for a WebSocket masker")
    try:
        _lib.nvx_xormask_process(masker, _ffi.from_buffer(buffer), length)
    finally:
        _lib.nvx_xormask_free(masker)
    return bytes(buffer)
