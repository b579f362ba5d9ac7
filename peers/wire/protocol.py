"""The peer wire protocol: length-prefixed msgpack frames over TLS 1.3.

Before TLS the dialer sends a preamble naming itself (so a refused stranger can be shown) and
the listener answers READY; after TLS each side sends a hello with the protocol version.
Then frames are requests {"id", "op", "args"} or responses {"re", "ok", "result"|"error"},
both ways. Anything malformed ends that connection only.
"""

import asyncio
from typing import Any

from peers.wire.frames import (
    HEADER,
    MAX_FRAME,
    ProtocolError,
    coalesced,
    frame,
    unpack,
)

# 2: chunk contents travel as parts after the answer's message (peers.wire.frames.Parts).
# 3: data links (peers.client.links), announced in the preamble ("REALIZE1 <peer id> data").
# 4: chunks asked for as ranges of the peer's blobs (areas.pull.fetch.spans).
# 5: ranges of chunks asked for as patches against old bytes (areas.pull.patches).
# 6: `area-states`, asked by a peer as it connects (areas.watch.catchup).
VERSION = 6
MAGIC = b"REALIZE1 "
READY = b"REALIZE1 READY\n"
PREAMBLE_MAX = 96
HANDSHAKE_TIMEOUT = 15.0
IDLE_TIMEOUT = 90.0
PING_EVERY = 30.0
# The requests a data link (peers.client.links) carries: reads only, each safe to ask again.
DATA_OPS = frozenset({"history", "blobs", "chunks"})
# The preamble's last word on a data link.
DATA_WORD = b"data"
# A data link's kernel socket buffers: room for a whole answer, so the sender writes it
# without waiting for the reader to make room a few records at a time.
SOCKET_BUFFER_BYTES = 4 << 20


class RemoteError(Exception):
    """The other side answered a request with an error."""


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
    for piece in coalesced(frame(message, raw)):
        writer.write(piece)  # not writelines: a plain socket transport would join them all
    await writer.drain()


def hello(name: str, role: str | None = None) -> dict[str, Any]:
    """The first frame each side sends; a worker's data link says so (role "data")."""
    message = {"hello": "realize", "version": VERSION, "name": name}
    if role is not None:
        message["role"] = role
    return message


def check_hello(message: dict) -> None:
    if message.get("hello") != "realize":
        raise ProtocolError("no hello")
    if message.get("version") != VERSION:
        raise ProtocolError(f"protocol version {message.get('version')!r}, we speak {VERSION}")
