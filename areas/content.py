"""File content by chunks: read from the Real (verified), or fetched; files written atomically.

Real files are not copied into a store: a chunk is read from any indexed file that holds it,
at the offset its blob's chunk list gives, and its hash is checked before it is used, so a
file changed behind our back is never trusted.
"""

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import blake3

from .chunking import ChunkRef, chunk_hash
from .models import BlobChunk, Entry
from .paths import TEMP_PREFIX, local_path


class CorruptContent(ValueError):
    """Content whose hash is not the one it should have."""


class DiskChanged(RuntimeError):
    """The file on disk is not the version the index knows: it changed since the last scan."""


def local_chunks(hashes: set[bytes]) -> dict[bytes, tuple[Path, int, int]]:
    """Where in this peer's Real files each of these chunks can be read: (file, offset, length)."""
    if not hashes:
        return {}
    rows = BlobChunk.objects.filter(hash__in=list(hashes)).values_list(
        "hash", "blob__hash", "offset", "length"
    )
    by_blob: dict[bytes, list[tuple[bytes, int, int]]] = {}
    for h, blob_hash, offset, length in rows:
        by_blob.setdefault(bytes(blob_hash), []).append((bytes(h), offset, length))
    found: dict[bytes, tuple[Path, int, int]] = {}
    holders = Entry.objects.filter(blob_hash__in=list(by_blob)).values_list(
        "blob_hash", "area__path", "path"
    )
    for blob_hash, area_path, path in holders:
        for h, offset, length in by_blob.get(bytes(blob_hash), ()):
            found.setdefault(h, (Path(area_path) / path, offset, length))
    return found


def read_local_chunk(where: tuple[Path, int, int], expected: bytes) -> bytes | None:
    path, offset, length = where
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError:
        return None
    return data if len(data) == length and chunk_hash(data) == expected else None


class ChunkSource:
    """Chunks for the files being written.

    Small files' missing chunks are fetched ahead in batches (`fetched`); a large file's are
    fetched while it is written, a batch at a time, and dropped once written, so memory stays
    bounded whatever the file size. Local chunks are read from the Real and checked.
    """

    def __init__(self, fetch: Callable[[list[bytes]], list[bytes]], batch_bytes: int):
        self.fetch = fetch
        self.batch_bytes = batch_bytes
        self.fetched: dict[bytes, bytes] = {}
        self.local: dict[bytes, tuple[Path, int, int]] = {}
        self._streaming: dict[bytes, bytes] = {}
        self._plan: list[ChunkRef] = []

    def add_fetched(self, expected: bytes, data: bytes, keep: bool = True) -> None:
        if chunk_hash(data) != expected:
            raise CorruptContent("a peer sent a chunk whose hash does not match: discarded")
        (self.fetched if keep else self._streaming)[expected] = data

    def fetch_many(self, hashes: list[bytes], lengths: dict[bytes, int]) -> None:
        batch, size = [], 0
        for h in hashes:
            batch.append(h)
            size += lengths[h]
            if size >= self.batch_bytes:
                self._fetch(batch, keep=True)
                batch, size = [], 0
        if batch:
            self._fetch(batch, keep=True)

    def _fetch(self, hashes: list[bytes], keep: bool) -> None:
        for h, data in zip(hashes, self.fetch(hashes), strict=True):
            self.add_fetched(h, data, keep)

    def begin(self, chunks: list[ChunkRef]) -> None:
        """The chunks of the next file to write, in order."""
        self._plan = chunks
        self._streaming.clear()

    def get(self, ref: ChunkRef, position: int) -> bytes:
        data = self.fetched.get(ref.hash) or self._streaming.pop(ref.hash, None)
        if data is None and ref.hash in self.local:
            data = read_local_chunk(self.local[ref.hash], ref.hash)
            if data is None:
                # The file it was to be read from changed or moved since: fetch it instead.
                del self.local[ref.hash]
        if data is None:
            self._fetch_ahead(position)
            data = self._streaming.pop(ref.hash, None)
        if data is None:
            raise LookupError(f"chunk {ref.hash.hex()[:16]} is not available")
        return data

    def _fetch_ahead(self, position: int) -> None:
        batch, size = [], 0
        for ref in self._plan[position:]:
            if ref.hash in self.fetched or ref.hash in self.local or ref.hash in batch:
                continue
            batch.append(ref.hash)
            size += ref.length
            if size >= self.batch_bytes:
                break
        if batch:
            self._fetch(batch, keep=False)


def write_file(
    root: Path,
    rel: str,
    blob_hash: bytes,
    chunks: list[ChunkRef],
    source: ChunkSource,
    mtime_ns: int,
    mode: int,
    expect: Entry | None,
) -> os.stat_result:
    """Write a blob at `rel` so that only the complete, verified file ever becomes visible.

    The content goes to a temporary file beside the target, is hashed as it is written and
    checked against `blob_hash`, flushed to disk, given its mode and mtime, and renamed over
    the target; but only if the target is still the version `expect` describes.
    """
    full = local_path(root, rel)
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        hasher = blake3.blake3()
        source.begin(chunks)
        for position, ref in enumerate(chunks):
            data = source.get(ref, position)
            hasher.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        if hasher.digest() != blob_hash:
            raise CorruptContent(f"assembled {rel!r} does not match its hash")
        os.fchmod(fd, mode & 0o7777)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
        check_disk(full, expect)
        os.replace(tmp, full)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(full.parent)
    return os.lstat(full)


def check_disk(full: Path, expect: Entry | None) -> None:
    """Raise DiskChanged unless the file at `full` is what the index says it is."""
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        if expect is not None and expect.exists:
            raise DiskChanged(f"{full} disappeared") from None
        return
    if expect is None or not expect.exists:
        raise DiskChanged(f"{full} appeared")
    if (st.st_size, st.st_mtime_ns, st.st_ino) != (expect.size, expect.mtime_ns, expect.inode):
        raise DiskChanged(f"{full} changed")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_empty_parents(root: Path, full: Path) -> None:
    parent = full.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def clean_temporary_files(root: Path) -> None:
    """Remove what an interrupted write left behind (never visible under a real name)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                Path(dirpath, name).unlink(missing_ok=True)
