"""The mount's cache of Unreal content: a sparse file per blob under REALIZE_HOME.

A chunk fetched and checked is written in place, at its offset in its blob's file; a
sidecar file lists the ranges held. Writing a chunk is one pwrite into a file kept open,
where a file per chunk cost a create, a write and a rename each, and held back every read
fetched from a peer. A range listed in a sidecar from an earlier run is checked against
its chunk's hash the first time it is read (a crash may have kept the record and lost the
data): a range that fails is fetched again.

The cache is bounded: past its limit, the least recently used blobs go whole, never one
open now.
"""

import contextlib
import logging
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from areas.files import HELD_SUFFIX, RANGE, blob_file, held_file, read_held

log = logging.getLogger("realize.mount")

# Blob files kept open (their descriptors) at most, the least recently used closed first.
OPEN_FILES = 64


@dataclass
class _Blob:
    held: dict[int, int] = field(default_factory=dict)  # offset -> length
    checked: set[int] = field(default_factory=set)  # offsets written or checked this run
    bytes: int = 0
    fd: int | None = None
    sidecar: int | None = None
    busy: int = 0  # reads and writes under way: its file stays open and kept


class BlobCache:
    """Thread-safe: the mount calls it from its worker threads."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self.size = 0  # bytes held
        self.open_blobs: dict[bytes, int] = {}
        self._blobs: OrderedDict[bytes, _Blob] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._fds = 0
        self.root.mkdir(parents=True, exist_ok=True)
        self._load()

    def _path(self, blob: bytes) -> Path:
        return blob_file(self.root, blob)

    # --- reading and writing --------------------------------------------------------------------
    def read(self, blob: bytes, pieces: list[tuple[int, int]], check=None) -> dict[int, memoryview]:
        """Of these ranges (offset, length), those held, by offset: each stretch of
        neighbours read in one go, and each range a view of it, not a copy. A range not yet
        checked this run is returned only if `check(offset, data)` is true (or there is no
        check); one that fails is dropped."""
        with self._lock:
            b = self._blobs.get(blob)
            held = [] if b is None else sorted(p for p in pieces if b.held.get(p[0]) == p[1])
            if not held:
                return {}
            fd = self._use(blob, b)
            trusted = {offset for offset, _ in held if offset in b.checked}
        found = {}
        try:
            for start, end, run in _stretches(held):
                view = memoryview(os.pread(fd, end - start, start))
                for offset, length in run:
                    data = view[offset - start : offset - start + length]  # not copied
                    if len(data) == length:
                        found[offset] = data
        finally:
            self._done(b)
        for offset, _ in held:
            data = found.get(offset)
            if offset in trusted or (data is not None and (check is None or check(offset, data))):
                continue
            found.pop(offset, None)
            log.warning("a cached range of %s was not as written: fetched again", blob.hex()[:16])
            self._forget(blob, offset)
        if len(trusted) < len(found):
            with self._lock:
                b.checked.update(found)
        return found

    def write(
        self, blob: bytes, offset: int, data: bytes | memoryview, pieces: list | None = None
    ) -> None:
        """Checked content at its offset in its blob's file, in one write: `pieces`, the
        chunks it holds (offset, length), or one chunk."""
        pieces = pieces or [(offset, len(data))]
        with self._lock:
            b = self._blobs.get(blob)
            if b is None:
                b = self._blobs[blob] = _Blob()
            if all(b.held.get(o) == n for o, n in pieces):
                self._blobs.move_to_end(blob)
                return
            fd = self._use(blob, b)
        try:
            os.pwrite(fd, data, offset)
            with self._lock:
                if b.sidecar is None:
                    b.sidecar = os.open(
                        held_file(self._path(blob)),
                        os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                        0o600,
                    )
                    self._fds += 1
                os.write(b.sidecar, b"".join(RANGE.pack(o, n) for o, n in pieces))
                for o, n in pieces:
                    if o not in b.held:
                        b.bytes += n
                        self.size += n
                    b.held[o] = n
                    b.checked.add(o)
        finally:
            self._done(b)
        self._evict()

    def held_bytes(self, blob: bytes) -> int:
        with self._lock:
            b = self._blobs.get(blob)
            return b.bytes if b is not None else 0

    def opened(self, blob: bytes, by: int = 1) -> None:
        """A file of this blob was opened (or closed: by=-1): never evicted while open."""
        with self._lock:
            count = self.open_blobs.get(blob, 0) + by
            if count > 0:
                self.open_blobs[blob] = count
            else:
                self.open_blobs.pop(blob, None)

    # --- inside ---------------------------------------------------------------------------------
    def _use(self, blob: bytes, b: _Blob) -> int:
        """The blob file's descriptor, kept open and the blob kept until _done (under the
        lock)."""
        self._blobs.move_to_end(blob)
        b.busy += 1
        if b.fd is None:
            path = self._path(blob)
            path.parent.mkdir(exist_ok=True)
            b.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fds += 1
            if self._fds > OPEN_FILES:
                self._close_some()
        return b.fd

    def _done(self, b: _Blob) -> None:
        with self._lock:
            b.busy -= 1

    def _close_some(self) -> None:
        for blob, b in self._blobs.items():
            if self._fds <= OPEN_FILES // 2:
                break
            if not b.busy and blob not in self.open_blobs:
                self._close(b)

    def _close(self, b: _Blob) -> None:
        for name in ("fd", "sidecar"):
            fd = getattr(b, name)
            if fd is not None:
                os.close(fd)
                setattr(b, name, None)
                self._fds -= 1

    def _forget(self, blob: bytes, offset: int) -> None:
        """A range found wrong: no longer held (the sidecar is rewritten on the next load)."""
        with self._lock:
            b = self._blobs.get(blob)
            if b is not None and offset in b.held:
                length = b.held.pop(offset)
                b.checked.discard(offset)
                b.bytes -= length
                self.size -= length

    def _evict(self) -> None:
        """Least recently used blobs go until the cache is within its limit, but none open."""
        gone = []
        with self._lock:
            if self.size <= self.limit:
                return
            for blob in list(self._blobs):
                if self.size <= self.limit:
                    break
                if blob in self.open_blobs or self._blobs[blob].busy:
                    continue
                b = self._blobs.pop(blob)
                self._close(b)
                self.size -= b.bytes
                gone.append(blob)
        for blob in gone:
            path = self._path(blob)
            path.unlink(missing_ok=True)
            held_file(path).unlink(missing_ok=True)

    def _load(self) -> None:
        """What the cache holds from before, least recently used first; each sidecar
        rewritten with its ranges once each."""
        found = []
        for directory in self.root.iterdir():
            if not directory.is_dir():
                continue
            for item in os.scandir(directory):
                if item.name.endswith(HELD_SUFFIX):
                    continue
                try:
                    blob = bytes.fromhex(item.name)
                    found.append((item.stat().st_mtime_ns, blob, Path(item.path)))
                except (OSError, ValueError):
                    with contextlib.suppress(OSError):
                        os.unlink(item.path)
        for _, blob, path in sorted(found):
            held = _read_sidecar(path)
            if not held:
                path.unlink(missing_ok=True)
                held_file(path).unlink(missing_ok=True)
                continue
            b = self._blobs[blob] = _Blob(held=held, bytes=sum(held.values()))
            self.size += b.bytes
        self._evict()


def _stretches(pieces: list[tuple[int, int]]):
    """(start, end, pieces) of each stretch of neighbouring ranges, in order."""
    run: list[tuple[int, int]] = []
    for offset, length in pieces:
        if run and run[-1][0] + run[-1][1] != offset:
            yield run[0][0], run[-1][0] + run[-1][1], run
            run = []
        run.append((offset, length))
    if run:
        yield run[0][0], run[-1][0] + run[-1][1], run


def _read_sidecar(data: Path) -> dict[int, int]:
    """The ranges a blob file's sidecar lists within its size; the sidecar rewritten so."""
    held = read_held(data)
    if held:
        sidecar = held_file(data)
        tmp = sidecar.with_name(sidecar.name + ".new")
        tmp.write_bytes(b"".join(RANGE.pack(o, n) for o, n in sorted(held.items())))
        os.replace(tmp, sidecar)
    return held


def remove_chunk_files(cache_root: Path) -> None:
    """The cache of a file per chunk that earlier versions kept: gone (it is read no more)."""
    shutil.rmtree(cache_root / "chunks", ignore_errors=True)
