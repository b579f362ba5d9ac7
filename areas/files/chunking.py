"""Content-defined chunks (FastCDC) named by BLAKE3 hashes.

Chunk boundaries depend on the content around them, not on offsets, so an insertion in the
middle of a file changes the chunks near it and leaves the others as they were: an edit
travels as the few chunks the receiver lacks.
"""

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import blake3
from pyfastcdc.cy import FastCDC

# Chunks average about 48 KiB (FastCDC's AVG_SIZE plus MIN_SIZE), none over 128 KiB. Over
# random edits of a 64 MiB file whole chunks would move 42 KB for a changed byte and 50 KB
# for 4 KiB inserted, on average, the insertion with a long tail (the chunk it falls in can
# end elsewhere, and the next cuts then skip past the old boundaries for a few chunks: up to
# 386 KB, simulated); an edit's chunks travel as patches against the old bytes they replace
# instead (areas.pull.patches), of a few KB. 64/256 KiB chunks cost twice as much, and
# normalization levels 2 and 3 resynchronise slowly after an insertion.
MIN_SIZE = 16 * 1024
AVG_SIZE = 32 * 1024
MAX_SIZE = 128 * 1024
NORMALIZATION = 1
_cdc = FastCDC(
    avg_size=AVG_SIZE, min_size=MIN_SIZE, max_size=MAX_SIZE, normalized_chunking=NORMALIZATION
)


@dataclass(frozen=True)
class ChunkRef:
    hash: bytes
    offset: int
    length: int


@dataclass(frozen=True)
class Hashed:
    hash: bytes
    size: int
    chunks: list[ChunkRef]


# blake3 lets go of the GIL for an input of 2 KiB or more and must take it back: beside a
# thread running Python that costs up to the switch interval (measured: 0.4-1 ms for inputs
# of 2-16 KiB, against 3-6 us alone). Inputs up to MIN_SIZE (whole small files, which a sync
# handles by thousands) are hashed in pieces smaller than that, which keep the GIL; the hash
# is the same. Larger ones are hashed in one call.
_HELD_PIECE = 2047


def chunk_hash(data: bytes | memoryview) -> bytes:
    size = len(data)
    if size <= _HELD_PIECE or size > MIN_SIZE:
        return blake3.blake3(data).digest()
    hasher = blake3.blake3()
    view = memoryview(data)
    for start in range(0, size, _HELD_PIECE):
        hasher.update(view[start : start + _HELD_PIECE])
    return hasher.digest()


def single_chunk(blob_hash: bytes, size: int) -> list[ChunkRef]:
    """The chunk list of a blob no larger than MIN_SIZE: the whole content, or nothing."""
    return [ChunkRef(blob_hash, 0, size)] if size else []


def hash_bytes(data: bytes | memoryview) -> Hashed:
    if len(data) <= MIN_SIZE:
        h = chunk_hash(data)
        return Hashed(h, len(data), single_chunk(h, len(data)))
    # The whole content in one call: each call lets go of the GIL and must take it back,
    # which beside busy threads costs far more than the hashing (see areas.files.syscalls).
    whole = chunk_hash(data)
    chunks = [ChunkRef(chunk_hash(c.data), c.offset, c.length) for c in _cdc.cut_buf(data)]
    return Hashed(whole, len(data), chunks)


def hash_file(path: str | Path) -> Hashed:
    """A file's content hashed (the caller checks it did not change while being read). With
    plain system calls: most files of a tree are small, and a file object, or a Path, costs
    more than reading one."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size <= MIN_SIZE:
            return hash_bytes(os.read(fd, size + 1))  # one byte more: a file grown is seen
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return hash_bytes(view)
            finally:
                view.release()
    finally:
        os.close(fd)
