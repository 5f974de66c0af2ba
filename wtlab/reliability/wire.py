"""QUIC variable-length integers (RFC 9000 section 16), used by every reliability frame.

``encode_varint(v)`` returns 1, 2, 4 or 8 bytes; ``decode_varint(buf, pos)`` returns
``(value, new_pos)`` and raises :class:`wtlab.ProtocolError` on a truncated buffer.
"""

from __future__ import annotations

import struct

from wtlab.errors import ProtocolError

VARINT_MAX = (1 << 62) - 1

_pack_h = struct.Struct(">H").pack
_pack_i = struct.Struct(">I").pack
_pack_q = struct.Struct(">Q").pack


def encode_varint(value: int) -> bytes:
    """The shortest QUIC varint for ``0 <= value < 2**62``."""
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return _pack_h(value | 0x4000)
    if value < 0x40000000:
        return _pack_i(value | 0x80000000)
    if value <= VARINT_MAX:
        return _pack_q(value | 0xC000000000000000)
    raise ValueError(f"varint out of range: {value}")


def varint_size(value: int) -> int:
    """Bytes ``encode_varint(value)`` takes."""
    return 1 if value < 0x40 else 2 if value < 0x4000 else 4 if value < 0x40000000 else 8


def decode_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode one varint at ``pos``; returns ``(value, position after it)``."""
    try:
        first = buf[pos]
    except IndexError:
        raise ProtocolError("truncated reliability frame (varint missing)") from None
    length = 1 << (first >> 6)
    end = pos + length
    if end > len(buf):
        raise ProtocolError("truncated reliability frame (varint cut short)")
    if length == 1:
        return first, end
    value = first & 0x3F
    for i in range(pos + 1, end):
        value = (value << 8) | buf[i]
    return value, end


def try_decode_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """Like :func:`decode_varint`, but None when the buffer ends first (stream parsing)."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    length = 1 << (first >> 6)
    end = pos + length
    if end > len(buf):
        return None
    if length == 1:
        return first, end
    value = first & 0x3F
    for i in range(pos + 1, end):
        value = (value << 8) | buf[i]
    return value, end
