"""Patches: the new chunks of an edited file, sent as a difference from the old bytes they replace.

An edit moves whole chunks, often several. Instead the receiver signs the old bytes as small
content-defined pieces (`signature`); the sender answers with piece numbers and new bytes
(`diff`). The receiver rebuilds the chunks (`patch`) and checks their hashes; a bad patch is
discarded and the chunks are fetched whole.
"""

from dataclasses import dataclass

import msgpack
from pyfastcdc.cy import FastCDC

from areas.files import ChunkRef, chunk_hash

PIECE_AVG = 1024
KEY_BYTES = 8  # of a piece's BLAKE3 hash: a collision only costs a discarded patch
# Old bytes signed for one run of new chunks at most; a larger edit is fetched as chunks.
MAX_BASE = 8 * 1024 * 1024
MAX_KEYS = MAX_BASE // 256  # pieces are at least 256 bytes
_pieces = FastCDC(avg_size=PIECE_AVG, min_size=256, max_size=4 * PIECE_AVG, normalized_chunking=1)


@dataclass(frozen=True)
class Signature:
    """Old bytes as pieces: `keys` (what is sent), and where each piece is in them."""

    keys: bytes
    pieces: list[tuple[int, int]]


def signature(base: bytes | memoryview) -> Signature:
    keys, pieces = [], []
    for piece in _pieces.cut_buf(base):
        keys.append(chunk_hash(piece.data)[:KEY_BYTES])
        pieces.append((piece.offset, piece.length))
    return Signature(b"".join(keys), pieces)


def check_keys(keys) -> bytes:
    """A signature's keys as a peer sent them (ValueError if they break the rules)."""
    if not isinstance(keys, bytes) or len(keys) % KEY_BYTES or len(keys) > MAX_KEYS * KEY_BYTES:
        raise ValueError("bad signature")
    return keys


def diff(new: bytes | memoryview, keys: bytes) -> bytes:
    """The new bytes against the old ones signed by `keys`, encoded.

    A list of [first, count] runs of old pieces and of new bytes."""
    numbers: dict[bytes, int] = {}
    for number, start in enumerate(range(0, len(keys), KEY_BYTES)):
        numbers.setdefault(keys[start : start + KEY_BYTES], number)
    view = memoryview(new)
    ops: list = []
    literal = None  # start of the new bytes not yet written out
    for piece in _pieces.cut_buf(view):
        number = numbers.get(chunk_hash(piece.data)[:KEY_BYTES])
        if number is None:
            if literal is None:
                literal = piece.offset
            continue
        if literal is not None:
            ops.append(bytes(view[literal : piece.offset]))
            literal = None
        last = ops[-1] if ops else None
        if isinstance(last, list) and last[0] + last[1] == number:
            last[1] += 1
        else:
            ops.append([number, 1])
    if literal is not None:
        ops.append(bytes(view[literal:]))
    return msgpack.packb(ops, use_bin_type=True)


def patch(base: bytes | memoryview, signed: Signature, encoded, length: int) -> bytes | None:
    """The new bytes (`length` of them) rebuilt from the old ones and a peer's diff.

    None if the diff is malformed or does not add up; the caller checks the hashes."""
    if not isinstance(encoded, bytes | memoryview):
        return None
    try:
        ops = msgpack.unpackb(encoded, raw=False, max_bin_len=length, max_array_len=length)
    except (ValueError, msgpack.UnpackException):
        return None
    if not isinstance(ops, list):
        return None
    view, pieces, out = memoryview(base), signed.pieces, bytearray()
    for op in ops:
        if isinstance(op, bytes):
            out += op
        elif (
            isinstance(op, list)
            and len(op) == 2
            and all(type(n) is int for n in op)
            and 0 <= op[0]
            and 1 <= op[1] <= len(pieces) - op[0]
        ):
            first, last = pieces[op[0]], pieces[op[0] + op[1] - 1]
            out += view[first[0] : last[0] + last[1]]
        else:
            return None
        if len(out) > length:
            return None
    return bytes(out) if len(out) == length else None


def replaced(new: list[ChunkRef], base: list[ChunkRef]) -> dict[int, tuple[int, int]]:
    """For chunks of `new` that `base` lacks, the old bytes they replace: (offset, length) by index.

    A run of new chunks replaces what lies between its shared neighbours in the base; a run
    without such bounds, or bounding more than MAX_BASE or nothing, has none."""
    where: dict[bytes, int] = {}
    for i, c in enumerate(base):
        where.setdefault(c.hash, i)
    end = base[-1].offset + base[-1].length if base else 0
    out: dict[int, tuple[int, int]] = {}
    i = 0
    while i < len(new):
        if new[i].hash in where:
            i += 1
            continue
        j = i
        while j + 1 < len(new) and new[j + 1].hash not in where:
            j += 1
        first = where[new[i - 1].hash] + 1 if i else 0
        after = where[new[j + 1].hash] if j + 1 < len(new) else len(base)
        if first < after:
            start = base[first].offset
            stop = base[after].offset if after < len(base) else end
            if 0 < stop - start <= MAX_BASE:
                out.update((k, (start, stop - start)) for k in range(i, j + 1))
        i = j + 1
    return out
