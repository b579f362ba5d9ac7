"""Chunks read from this peer's Real files: found through the index, checked by hash.

Real files are not copied into a store: a chunk is read from any indexed file holding it.
A file changed behind our back is never trusted: what it gives is checked against the hash.
"""

import contextlib
import os
from collections.abc import Iterator

from areas.files import chunk_hash
from areas.index.sql import rows
from areas.models import Area
from peers.wire import BufferPool

# Files on this disk: every one of a Real area, the realized ones of an Unreal area
# (scanner.on_disk). Its one parameter: ON_DISK_MODE.
ON_DISK = "(a.mode = %s OR e.inode <> 0)"
ON_DISK_MODE = Area.Mode.REAL.value

# Neighbouring chunks of one file are read together, up to this many at once.
RUN_CHUNKS = 256


def local_chunks(hashes: set[bytes]) -> dict[bytes, tuple[str, int, int, tuple]]:
    """Where each chunk can be read in our Real: (file, offset, length, size/mtime/ctime/inode).

    Simple lookups, each at worst one pass over its table: a single joining query got plans
    scanning whole tables per request. A one-chunk blob has no chunk row (blobs.store_blobs):
    a file holding the blob holds the chunk."""
    if not hashes:
        return {}
    found: dict[bytes, tuple[str, int, int, tuple]] = {}
    for h, root, path, size, *indexed in rows(
        "SELECT e.blob_hash, a.path, e.path, e.size, e.mtime_ns, e.ctime_ns, e.inode"
        " FROM areas_entry e JOIN areas_area a ON a.id = e.area_id"
        " WHERE e.blob_hash = ANY(%b) AND e.size > 0 AND " + ON_DISK,
        [list(hashes), ON_DISK_MODE],
    ):
        found.setdefault(bytes(h), (os.path.join(root, path), 0, size, (size, *indexed)))
    chunks = rows(
        'SELECT hash, blob_id, "offset", length FROM areas_blobchunk WHERE hash = ANY(%b)',
        [[h for h in hashes if h not in found]],
    )
    if not chunks:
        return found
    files: dict[int, tuple[str, tuple]] = {}
    for blob_id, root, path, *indexed in rows(
        "SELECT b.id, a.path, e.path, e.size, e.mtime_ns, e.ctime_ns, e.inode FROM areas_blob b"
        " JOIN areas_entry e ON e.blob_hash = b.hash JOIN areas_area a ON a.id = e.area_id"
        " WHERE b.id = ANY(%b) AND " + ON_DISK,
        [list({blob_id for _, blob_id, _, _ in chunks}), ON_DISK_MODE],
    ):
        files.setdefault(blob_id, (os.path.join(root, path), tuple(indexed)))
    for h, blob_id, offset, length in chunks:
        if blob_id in files:
            path, indexed = files[blob_id]
            found.setdefault(bytes(h), (path, offset, length, indexed))
    return found


def read_local_chunk(where: tuple[str, int, int, tuple], expected: bytes) -> bytes | None:
    path, offset, length, _indexed = where
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError:
        return None
    return data if len(data) == length and chunk_hash(data) == expected else None


def read_local_chunks(
    hashes: list[bytes],
    where: dict[bytes, tuple[str, int, int, tuple]],
    buffers: BufferPool | None = None,
) -> dict[bytes, memoryview]:
    """The chunks readable from our Real, to send: each file opened once, neighbours read together.

    A file still as indexed holds what its scan hashed, as the scanner trusts; other files'
    chunks are checked and left out if changed. The receiver checks every chunk anyway.
    With `buffers`, runs are read into its buffers instead of new memory."""
    by_file: dict[str, list[tuple[int, int, bytes]]] = {}
    indexed: dict[str, tuple] = {}
    for h in hashes:
        if h in where:
            path, offset, length, indexed[path] = where[h]
            by_file.setdefault(path, []).append((offset, length, h))
    found: dict[bytes, memoryview] = {}
    for path, parts in by_file.items():
        with _reading(path, indexed[path]) as opened:
            if opened is None:
                continue
            fd, unchanged, _ = opened
            for start, run in _runs(sorted(set(parts))):
                end = run[-1][0] + run[-1][1]
                data = _pread(fd, end - start, start, buffers)
                for offset, length, h in run:
                    chunk = data[offset - start : offset - start + length]
                    if len(chunk) == length and (unchanged or chunk_hash(chunk) == h):
                        found[h] = chunk
    return found


@contextlib.contextmanager
def _reading(path: str, indexed: tuple) -> Iterator[tuple[int, bool, int] | None]:
    """The file opened: (descriptor, whether still as indexed, size); None if it cannot be.

    A read error ends the reading quietly; what was read before it stands."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield None
        return
    try:
        st = os.fstat(fd)
        yield fd, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == indexed, st.st_size
    except OSError:
        pass
    finally:
        os.close(fd)


def blob_files(blobs: set[bytes]) -> dict[bytes, tuple[str, tuple]]:
    """A file of our Real holding each blob we have: (file, its indexed size/mtime/ctime/inode)."""
    if not blobs:
        return {}
    found: dict[bytes, tuple[str, tuple]] = {}
    for blob, root, path, *indexed in rows(
        "SELECT e.blob_hash, a.path, e.path, e.size, e.mtime_ns, e.ctime_ns, e.inode"
        " FROM areas_entry e JOIN areas_area a ON a.id = e.area_id"
        " WHERE e.blob_hash = ANY(%b) AND " + ON_DISK,
        [list(blobs), ON_DISK_MODE],
    ):
        found.setdefault(bytes(blob), (os.path.join(root, path), tuple(indexed)))
    return found


def held_blobs(blobs: list[bytes]) -> list[bytes]:
    """Those of the blobs a file of our Real holds (an Unreal area's: those realized)."""
    if not blobs:
        return []
    held = rows(
        "SELECT DISTINCT e.blob_hash FROM areas_entry e JOIN areas_area a ON a.id = e.area_id"
        " WHERE e.blob_hash = ANY(%b) AND " + ON_DISK,
        [list(blobs), ON_DISK_MODE],
    )
    return [bytes(blob) for (blob,) in held]


def read_ranges(
    ranges: list[tuple[bytes, int, int]],
    files: dict[bytes, tuple[str, tuple]],
    buffers: BufferPool | None = None,
) -> list[memoryview | None]:
    """Byte ranges of blobs (blob, offset, length), each read from a file still as indexed.

    Such a file holds what its scan hashed, as the scanner trusts. None where no file gives it."""
    found: list[memoryview | None] = [None] * len(ranges)
    by_file: dict[str, list[int]] = {}
    for i, (blob, _, _) in enumerate(ranges):
        if blob in files:
            by_file.setdefault(files[blob][0], []).append(i)
    for path, wanted in by_file.items():
        with _reading(path, files[ranges[wanted[0]][0]][1]) as opened:
            if opened is None or not opened[1]:
                continue
            fd, _, size = opened
            for i in sorted(wanted, key=lambda i: ranges[i][1]):
                _, offset, length = ranges[i]
                if offset + length <= size:
                    data = _pread(fd, length, offset, buffers)
                    found[i] = data if len(data) == length else None
    return found


def _pread(fd: int, n: int, offset: int, buffers: BufferPool | None) -> memoryview:
    if buffers is None:
        return memoryview(os.pread(fd, n, offset))
    view = buffers.take(n)
    return view[: os.preadv(fd, [view], offset)]


def _runs(parts: list[tuple[int, int, bytes]]) -> Iterator[tuple[int, list]]:
    """Chunks (offset, length, hash) sorted by offset, as runs of neighbours: (start, run)."""
    run: list[tuple[int, int, bytes]] = []
    for part in parts:
        if run and (part[0] != run[-1][0] + run[-1][1] or len(run) >= RUN_CHUNKS):
            yield run[0][0], run
            run = []
        run.append(part)
    if run:
        yield run[0][0], run
