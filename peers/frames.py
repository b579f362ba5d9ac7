"""Frames without the event loop: length-prefixed msgpack maps, for peerd and its clients.

Kept apart from `protocol` (which needs asyncio) so that a short command line client starts
quickly.
"""

import struct

import msgpack

MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side broke the protocol; the connection is closed."""


def pack(message: dict) -> bytes:
    return b"".join(frame(message))


def frame(message: dict, raw: bytes = b"") -> list[bytes]:
    """A frame as the pieces to write: length, message, and (relayed) raw bytes after it.
    Written as pieces, a frame of megabytes is not copied once more to be joined."""
    data = msgpack.packb(message, use_bin_type=True)
    size = len(data) + len(raw)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is over the limit")
    return [HEADER.pack(size), data, raw] if raw else [HEADER.pack(size), data]


def reply_id(data: bytes) -> int | None:
    """The request id a response frame answers (responses are packed with "re" first),
    read without decoding the rest: a relayed answer is passed on as it came."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data[:32])
    try:
        if unpacker.read_map_header() < 1 or unpacker.unpack() != "re":
            return None
        value = unpacker.unpack()
    except Exception:  # noqa: BLE001 - not a response frame: decoded (and judged) in full
        return None
    return value if isinstance(value, int) else None


def unpack_relayed(data: bytes) -> tuple[dict, dict | None]:
    """A local answer that may carry a peer's answer as it came, after peerd's header:
    (peerd's header, the peer's answer or None)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=MAX_FRAME + 64)
    unpacker.feed(data)
    try:
        header = unpacker.unpack()
        reply = unpacker.unpack() if isinstance(header, dict) and header.get("relayed") else None
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the peer's fault
        raise ProtocolError(f"undecodable frame: {exc}") from None
    if not isinstance(header, dict) or not isinstance(reply, dict | None):
        raise ProtocolError("a frame must be a map")
    return header, reply


def unpack(data: bytes) -> dict:
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the peer's fault
        raise ProtocolError(f"undecodable frame: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame must be a map")
    return message
