"""Frames without the event loop: length-prefixed msgpack maps, for peerd and its clients.

Apart from `protocol` (which needs asyncio) so a short command line client starts quickly.
"""

import socket
import struct

import msgpack

from peers.wire.buffers import BufferPool

MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side broke the protocol; the connection is closed."""


# The message at the start of a frame is decoded from at most this many bytes first (it is
# small; what follows it may be megabytes of parts).
HEAD_BYTES = 64 * 1024


class Parts(list):
    """A result of byte strings (None if missing), sent after the frame's message, not inside.

    Chunk contents are then not copied by the encoder or decoder: the receiver gets views."""


# Pieces of a frame smaller than this are joined before writing. Over TLS each write is at
# least one record: many small pieces would mean many records, TLS calls and system calls.
JOIN_BELOW = 64 * 1024
# The most bytes joined into one write: the copy stays small beside the frame.
JOINED_BYTES = 256 * 1024


def coalesced(pieces: list) -> list:
    """The pieces to write, in order, runs of small ones joined; large ones are left as they are."""
    out: list = []
    run: list = []
    run_bytes = 0
    for piece in pieces:
        if len(piece) >= JOIN_BELOW:
            if run:
                out.append(b"".join(run) if len(run) > 1 else run[0])
                run, run_bytes = [], 0
            out.append(piece)
            continue
        run.append(piece)
        run_bytes += len(piece)
        if run_bytes >= JOINED_BYTES:
            out.append(b"".join(run) if len(run) > 1 else run[0])
            run, run_bytes = [], 0
    if run:
        out.append(b"".join(run) if len(run) > 1 else run[0])
    return out


# The most one receive asks of the kernel: large frames arrive in a few calls.
RECEIVE_BYTES = 1 << 20


def recv_exactly(sock: socket.socket, n: int, pool: BufferPool | None = None) -> memoryview:
    """n bytes from a blocking socket; with a pool, into one of its buffers."""
    view = pool.take(n) if pool is not None else memoryview(bytearray(n))
    got = 0
    while got < n:
        part = sock.recv_into(view[got:], min(n - got, RECEIVE_BYTES))
        if not part:
            raise ConnectionResetError("the other side closed the connection")
        got += part
    return view


def recv_frame(sock: socket.socket, pool: BufferPool | None = None) -> memoryview:
    """One frame's bytes from a blocking socket (its header read and checked)."""
    (length,) = HEADER.unpack(recv_exactly(sock, HEADER.size))
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes is over the limit")
    return recv_exactly(sock, length, pool)


def pack(message: dict) -> bytes:
    return b"".join(frame(message))


def frame(message: dict, raw: bytes = b"") -> list:
    """A frame as pieces to write: length, message, then raw bytes (a relayed answer, or Parts).

    As pieces, a large frame is not copied again to be joined."""
    pieces = [raw] if raw else []
    result = message.get("result")
    if isinstance(result, Parts):
        sizes = [-1 if part is None else len(part) for part in result]
        message = {**message, "result": None, "parts": sizes}
        pieces += [part for part in result if part is not None and len(part)]
    data = msgpack.packb(message, use_bin_type=True)
    size = len(data) + sum(len(piece) for piece in pieces)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is over the limit")
    return [HEADER.pack(size), data, *pieces]


def reply_id(data: bytes) -> int | None:
    """The request id a response answers ("re" is packed first), without decoding the rest.

    A relayed answer is passed on as it came."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data[:32])
    try:
        if unpacker.read_map_header() < 1 or unpacker.unpack() != "re":
            return None
        value = unpacker.unpack()
    except Exception:  # noqa: BLE001 - not a response frame: decoded (and judged) in full
        return None
    return value if isinstance(value, int) else None


def unpack_relayed(data: bytes | bytearray) -> tuple[dict, dict | None]:
    """A local answer that may carry a peer's answer after peerd's header: (header, answer)."""
    view = memoryview(data)
    header, end = _message(view, 0)
    if not header.get("relayed"):
        return _with_parts(header, view, end), None
    return header, unpack(view[end:])


def unpack(data: bytes | bytearray | memoryview) -> dict:
    """A frame's message; a Parts result comes back as a list of views of `data`."""
    view = memoryview(data)
    message, end = _message(view, 0)
    return _with_parts(message, view, end)


def _message(view: memoryview, start: int) -> tuple[dict, int]:
    """The map encoded at `start`, and where it ends."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=MAX_FRAME)
    head = min(len(view), start + HEAD_BYTES)
    try:
        unpacker.feed(view[start:head])
        try:
            message = unpacker.unpack()
        except msgpack.OutOfData:
            unpacker.feed(view[head:])
            message = unpacker.unpack()
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the peer's fault
        raise ProtocolError(f"undecodable frame: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame must be a map")
    return message, start + unpacker.tell()


def _with_parts(message: dict, view: memoryview, end: int) -> dict:
    """The message, its result made of the parts after it, if it has any."""
    sizes = message.pop("parts", None)
    if sizes is None:
        if end != len(view):
            raise ProtocolError("bytes after the end of a message")
        return message
    if not isinstance(sizes, list) or not all(type(n) is int and n >= -1 for n in sizes):
        raise ProtocolError("bad part sizes")
    if end + sum(n for n in sizes if n > 0) != len(view):
        raise ProtocolError("part sizes do not add up to the frame")
    parts: list[memoryview | None] = []
    for n in sizes:
        parts.append(None if n < 0 else view[end : end + n])
        end += max(n, 0)
    message["result"] = parts
    return message


def read_stream_frame(stream) -> dict | None:
    """The next frame's message from a pipe between our processes; None at its end or if bad."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (length,) = HEADER.unpack(head)
    if length > MAX_FRAME:
        return None
    data = stream.read(length)
    if len(data) < length:
        return None
    return unpack(data)
