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

MIN_SIZE = 16 * 1024
AVG_SIZE = 64 * 1024
MAX_SIZE = 256 * 1024
# Normalized chunking level 3 keeps chunk sizes close to the average (about 70 KiB here):
# an edit then moves one chunk of about that size, rarely one near MAX_SIZE (with level 1, a
# sixth of all edits land in a chunk over 140 KB).
NORMALIZATION = 3
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


def chunk_hash(data: bytes | memoryview) -> bytes:
    return blake3.blake3(data).digest()


def single_chunk(blob_hash: bytes, size: int) -> list[ChunkRef]:
    """The chunk list of a blob no larger than MIN_SIZE: the whole content, or nothing."""
    return [ChunkRef(blob_hash, 0, size)] if size else []


def hash_bytes(data: bytes | memoryview) -> Hashed:
    if len(data) <= MIN_SIZE:
        h = chunk_hash(data)
        return Hashed(h, len(data), single_chunk(h, len(data)))
    whole = blake3.blake3()
    chunks = []
    for chunk in _cdc.cut_buf(data) if len(data) else ():
        whole.update(chunk.data)
        chunks.append(ChunkRef(chunk_hash(chunk.data), chunk.offset, chunk.length))
    return Hashed(whole.digest(), len(data), chunks)


def hash_file(path: Path) -> Hashed:
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size <= MIN_SIZE:
            return hash_bytes(f.read())
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return hash_bytes(view)
            finally:
                view.release()
