"""The peer wire protocol: length-prefixed msgpack frames over TLS 1.3.

Before TLS, the dialing side sends a short preamble naming itself (so a refused stranger can
be shown with its id) and the listening side answers READY; then TLS, then each side sends a
hello frame with the protocol version. Every
later frame is a request {"id", "op", "args"} or a response {"re", "ok", "result"|"error"},
in both directions over one connection. Anything malformed ends that connection only.
"""

import asyncio
import struct
from typing import Any

import msgpack

VERSION = 1
MAGIC = b"REALIZE1 "
READY = b"REALIZE1 READY\n"
PREAMBLE_MAX = 80
MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")
HANDSHAKE_TIMEOUT = 15.0
IDLE_TIMEOUT = 90.0
PING_EVERY = 30.0


class ProtocolError(Exception):
    """The other side broke the protocol; the connection is closed."""


class RemoteError(Exception):
    """The other side answered a request with an error."""


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


async def read_frame(reader: asyncio.StreamReader, timeout: float | None = IDLE_TIMEOUT) -> dict:
    return (await receive(reader, timeout))[0]


async def receive(reader: asyncio.StreamReader, timeout: float | None) -> tuple[dict, int]:
    """The next frame and its size on the wire."""
    data = await receive_raw(reader, timeout)
    return unpack(data), HEADER.size + len(data)


async def receive_raw(reader: asyncio.StreamReader, timeout: float | None) -> bytes:
    """The next frame, not decoded."""
    try:
        header = await asyncio.wait_for(reader.readexactly(HEADER.size), timeout)
        (length,) = HEADER.unpack(header)
        if length > MAX_FRAME:
            raise ProtocolError(f"frame of {length} bytes is over the limit")
        data = await asyncio.wait_for(reader.readexactly(length), timeout)
    except asyncio.IncompleteReadError:
        raise ConnectionResetError("connection closed") from None
    except TimeoutError:
        raise ProtocolError("timed out waiting for a frame") from None
    return data


async def write_frame(writer: asyncio.StreamWriter, message: dict, raw: bytes = b"") -> None:
    for piece in frame(message, raw):
        writer.write(piece)  # not writelines: a plain socket transport would join them
    await writer.drain()


def hello(name: str) -> dict[str, Any]:
    return {"hello": "realize", "version": VERSION, "name": name}


def check_hello(message: dict) -> None:
    if message.get("hello") != "realize":
        raise ProtocolError("no hello")
    if message.get("version") != VERSION:
        raise ProtocolError(f"protocol version {message.get('version')!r}, we speak {VERSION}")
