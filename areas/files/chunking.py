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

# Chunks average about AVG_SIZE plus MIN_SIZE, none over MAX_SIZE: small enough that an edit
# moves little. An edit's chunks travel as patches against the old bytes (areas.pull.patches).
# Larger chunks cost more per edit; normalization levels 2 and 3 resynchronise slowly.
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


# blake3 lets go of the GIL for inputs of 2 KiB or more; taking it back beside busy threads
# is slow. Inputs up to MIN_SIZE (small files, by thousands) are hashed in pieces that keep
# the GIL; the hash is the same.
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
    """A file's content hashed; the caller checks it did not change while read.

    Plain system calls: most files are small, and a file object costs more than the read."""
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
