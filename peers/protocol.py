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
    data = msgpack.packb(message, use_bin_type=True)
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(data)} bytes is over the limit")
    return HEADER.pack(len(data)) + data


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
    return unpack(data), HEADER.size + length


async def write_frame(writer: asyncio.StreamWriter, message: dict) -> None:
    writer.write(pack(message))
    await writer.drain()


def hello(name: str) -> dict[str, Any]:
    return {"hello": "realize", "version": VERSION, "name": name}


def check_hello(message: dict) -> None:
    if message.get("hello") != "realize":
        raise ProtocolError("no hello")
    if message.get("version") != VERSION:
        raise ProtocolError(f"protocol version {message.get('version')!r}, we speak {VERSION}")
