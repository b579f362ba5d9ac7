"""The mount's cache of Unreal content as it lies on disk, under REALIZE_HOME/cache/blobs: a
sparse file per blob, and beside it a record of the ranges it holds (offset and length,
appended as each checked chunk is written).

The mount keeps the cache (fusemount.blobcache); another process (the web pages) reads how
much of a blob it holds from these files, without opening the cache.
"""

import struct
from pathlib import Path

RANGE = struct.Struct(">QI")  # offset, length: a record of a range held
HELD_SUFFIX = ".held"


def blob_cache_directory(home: Path) -> Path:
    """Where the cache of an instance (its REALIZE_HOME) keeps its blobs."""
    return home / "cache" / "blobs"


def blob_file(root: Path, blob: bytes) -> Path:
    """A blob's file in the cache at `root`."""
    name = blob.hex()
    return root / name[:2] / name


def held_file(data: Path) -> Path:
    """The record of the ranges a blob's file holds."""
    return data.with_suffix(HELD_SUFFIX)


def read_held(data: Path) -> dict[int, int]:
    """The ranges (offset -> length) the record beside a blob's file lists that lie within
    the file (a crash may have kept a record whose data never reached the disk); none if
    either file is missing."""
    try:
        raw = held_file(data).read_bytes()
        size = data.stat().st_size
    except OSError:
        return {}
    held: dict[int, int] = {}
    for i in range(0, len(raw) - len(raw) % RANGE.size, RANGE.size):
        offset, length = RANGE.unpack_from(raw, i)
        if length and offset + length <= size:
            held[offset] = length
    return held


def held_bytes(root: Path, blob: bytes) -> int:
    """How many bytes of the blob the cache at `root` holds, as its files say now."""
    return sum(read_held(blob_file(root, blob)).values())


def cached_share(held: int, size: int) -> float:
    """The share of a file of `size` bytes that `held` bytes cached make (an empty file: all
    of it)."""
    if size <= 0:
        return 1.0
    return min(1.0, held / size)
