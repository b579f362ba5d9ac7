"""File content by chunks: read from the Real (verified), or fetched; files written atomically.

Real files are not copied into a store: a chunk is read from any indexed file that holds it,
at the offset its blob's chunk list gives, and its hash is checked before it is used, so a
file changed behind our back is never trusted.
"""

import contextlib
import ctypes
import errno
import itertools
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3

from peers.buffers import BufferPool

from . import heldcalls
from .bulk import rows
from .chunking import ChunkRef, chunk_hash
from .feed import ChunkFeed, CorruptContent, Unavailable
from .models import Entry
from .paths import TEMP_PREFIX
from .writing import content_writer

# Neighbouring chunks of one file are read together, up to this many at once.
RUN_CHUNKS = 256
# A file of one chunk up to this size is staged in system calls that keep the GIL: a pull
# makes thousands of them, each call that lets go of the GIL waiting to take it back while
# the pull's other threads run Python (see heldcalls).
SMALL_FILE = 64 * 1024
_libc = ctypes.CDLL(None, use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)
# Renames refusing to replace (renameat2 RENAME_NOREPLACE, holding the GIL: heldcalls) until
# the kernel or filesystem says it cannot.
_noreplace = heldcalls.available
# Temporary names: unique to this process and run, numbered (O_EXCL refuses any clash).
_TEMP_RUN = secrets.token_hex(4) + "-"
_temp_numbers = itertools.count()


class DiskChanged(RuntimeError):
    """The file on disk is not the version the index knows: it changed since the last scan."""


def local_chunks(hashes: set[bytes]) -> dict[bytes, tuple[str, int, int, tuple]]:
    """Where in this peer's Real files each of these chunks can be read: (file, offset, length,
    the file as indexed: size, mtime, ctime and inode).

    In simple lookups (the chunks, then a file holding each of their blobs; and files that
    are such a chunk whole): each costs at worst one pass over its tables however many
    hashes are asked. One query joining them all had plans that scanned whole tables at
    every request, or even for every hash asked. A blob of one chunk has no chunk row
    (blobs.store_blobs): the blob is that chunk, and a file holding it holds the chunk."""
    if not hashes:
        return {}
    found: dict[bytes, tuple[str, int, int, tuple]] = {}
    for h, root, path, size, *indexed in rows(
        "SELECT e.blob_hash, a.path, e.path, e.size, e.mtime_ns, e.ctime_ns, e.inode"
        " FROM areas_entry e JOIN areas_area a ON a.id = e.area_id"
        " WHERE e.blob_hash = ANY(%b) AND e.size > 0",
        [list(hashes)],
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
        " WHERE b.id = ANY(%b)",
        [list({blob_id for _, blob_id, _, _ in chunks})],
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
    """The chunks that can be read from this peer's Real, to send to a peer: each file opened
    once, neighbouring chunks read together, each chunk a view of what was read.

    A file that is still as indexed (size, mtime, ctime, inode) holds what its scan hashed, as
    the scanner itself trusts; the chunks of any other are checked against their hashes and
    left out if they changed. The receiver checks every chunk all the same.

    With `buffers`, runs are read into its buffers (kept by the caller as long as it needs
    the chunks) instead of into new memory."""
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
    """The file opened for reading: (its descriptor, whether it is still as indexed, its
    size); None if it cannot be opened. A read error ends the reading quietly (what was read
    before it stands)."""
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
    """A file of this peer's Real holding each of these blobs (those it has): (file, the file
    as indexed: size, mtime, ctime and inode)."""
    if not blobs:
        return {}
    found: dict[bytes, tuple[str, tuple]] = {}
    for blob, root, path, *indexed in rows(
        "SELECT e.blob_hash, a.path, e.path, e.size, e.mtime_ns, e.ctime_ns, e.inode"
        " FROM areas_entry e JOIN areas_area a ON a.id = e.area_id WHERE e.blob_hash = ANY(%b)",
        [list(blobs)],
    ):
        found.setdefault(bytes(blob), (os.path.join(root, path), tuple(indexed)))
    return found


def read_ranges(
    ranges: list[tuple[bytes, int, int]],
    files: dict[bytes, tuple[str, tuple]],
    buffers: BufferPool | None = None,
) -> list[memoryview | None]:
    """Byte ranges of blobs (blob, offset, length), each read from a file holding the blob
    that is still as indexed (size, mtime, ctime, inode: what its scan hashed, as the scanner
    itself trusts); None for a range no such file gives."""
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


class ChunkSource:
    """Chunks for the files being written.

    A chunk this peer has is read from its Real and checked; a missing one is taken from the
    feed that fetches them ahead (or, for a local one that turned out changed, fetched alone).
    One the peer cannot send, or sends wrong, is asked of the other peers (`elsewhere`).
    """

    def __init__(
        self,
        fetch_one: Callable[[bytes], bytes],
        elsewhere: Callable[[bytes, Exception], bytes],
    ):
        self.fetch_one = fetch_one
        self.elsewhere = elsewhere
        self.local: dict[bytes, tuple[str, int, int]] = {}
        self.feed: ChunkFeed | None = None

    def get(self, ref: ChunkRef, checked: bool = True) -> bytes | memoryview:
        """The chunk's content; checked against its hash, unless `checked` is False and
        the caller checks the hash of the whole it writes (the feed may then skip it)."""
        if ref.hash in self.local:
            data = read_local_chunk(self.local[ref.hash], ref.hash)
            if data is not None:
                return data
            # The file it was to be read from changed or moved since: fetch it instead.
            self.local.pop(ref.hash, None)
        try:
            if self.feed is not None and self.feed.wanted(ref.hash):
                return self.feed.take(ref.hash, checked)
            return self.fetch_one(ref.hash)
        except (Unavailable, CorruptContent) as exc:
            return self.elsewhere(ref.hash, exc)

    def get_again(self, ref: ChunkRef) -> bytes | memoryview:
        """The chunk once more, checked, without the feed (which gave it already): from
        this peer's files, else asked of the peer alone, else of the other peers."""
        if ref.hash in self.local:
            data = read_local_chunk(self.local[ref.hash], ref.hash)
            if data is not None:
                return data
        try:
            return self.fetch_one(ref.hash)
        except (Unavailable, CorruptContent) as exc:
            return self.elsewhere(ref.hash, exc)

    def abandon(self, chunks: list[ChunkRef]) -> None:
        """A write gave up before these chunks: the feed need not keep them for it."""
        if self.feed is not None:
            self.feed.skip([c.hash for c in chunks if c.hash not in self.local])


@dataclass(frozen=True)
class Staged:
    """A file written in full, checked and given its mode and mtime, not yet in place."""

    tmp: str
    full: str
    device: int

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def staging_path(home: Path, area_id: int) -> Path:
    return home / "staging" / str(area_id)


def staging_directory(home: Path, area_id: int, area_root: Path) -> Path | None:
    """Where this area's incoming files are written before they are renamed into place.

    A directory of REALIZE_HOME, emptied of what an interrupted run left, when a file there
    can be renamed into the area (same filesystem, same mount): watchers of the area (ours
    and any other program's) then see one rename per file instead of its creation and every
    write. None otherwise: files are then written beside their final place.

    The directory itself stays (only its content is removed): peerd's watcher watches it, to
    know the renames out of it for ours.
    """
    staging = staging_path(home, area_id)
    probe = staging / f"{TEMP_PREFIX}probe"
    inside = area_root / f"{TEMP_PREFIX}probe-{secrets.token_hex(4)}"
    try:
        staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging.chmod(0o700)  # what is staged there is the area's data
        for leftover in os.scandir(staging):
            if leftover.is_dir(follow_symlinks=False):
                shutil.rmtree(leftover.path, ignore_errors=True)
            else:
                os.unlink(leftover.path)
        probe.touch()
        os.link(probe, inside)  # EXDEV across filesystems and mounts, as rename would be
        os.unlink(inside)
    except OSError:
        return None
    finally:
        probe.unlink(missing_ok=True)
    return staging


def temporary_name(directory: str | Path) -> str:
    """A new name for a file being made in directory, unlike any other of this process's."""
    return f"{directory}/{TEMP_PREFIX}{_TEMP_RUN}{next(_temp_numbers):x}"


def stage_file(
    full: str,
    blob_hash: bytes,
    chunks: list[ChunkRef],
    source: ChunkSource,
    mtime_ns: int,
    mode: int,
    staging: Path | None = None,
) -> Staged:
    """Write a blob to a temporary file (in `staging`, else beside `full`), hashed as it is
    written and checked.

    Nothing is visible under the real name yet: `sync_staged` makes staged files durable, a
    batch at a time, and `expose` then renames each into place.
    """
    tmp = temporary_name(staging or os.path.dirname(full))
    if heldcalls.available and _is_small(blob_hash, chunks):
        return Staged(tmp, full, _stage_small(tmp, blob_hash, chunks, source, mtime_ns, mode))
    # Created with its permissions where the umask allows (each later change of them is one
    # more event for every watcher of the directory).
    flags, permissions = os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o777
    try:
        fd = os.open(tmp, flags, permissions)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        fd = os.open(tmp, flags, permissions)
    try:
        if not _write_content(fd, blob_hash, chunks, source):
            # A piece the peer sent wrong, taken unchecked: every piece again, each checked
            # (and one the peer keeps sending wrong got from another peer).
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            if not _write_content(fd, blob_hash, chunks, source, again=True):
                raise CorruptContent(
                    f"assembled {os.path.basename(full)!r} does not match its hash"
                )
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != mode & 0o7777:
            os.fchmod(fd, mode & 0o7777)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        device = st.st_dev
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return Staged(tmp, full, device)


def _is_small(blob_hash: bytes, chunks: list[ChunkRef]) -> bool:
    """Empty, or one chunk that is the blob itself, no larger than SMALL_FILE."""
    if not chunks:
        return True
    first = chunks[0]
    return (
        len(chunks) == 1
        and first.hash == blob_hash
        and not first.offset
        and (first.length <= SMALL_FILE)
    )


def _stage_small(
    tmp: str,
    blob_hash: bytes,
    chunks: list[ChunkRef],
    source: ChunkSource,
    mtime_ns: int,
    mode: int,
) -> int:
    """stage_file for a small file: its content got (checked by the source against the
    blob's hash), then the file made in system calls that keep the GIL (heldcalls); the
    device it is on."""
    data = bytes(source.get(chunks[0])) if chunks else b""
    if not chunks and chunk_hash(data) != blob_hash:
        raise CorruptContent("an empty file does not match its hash")
    try:
        return heldcalls.write_new(tmp, data, mode, mtime_ns)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        return heldcalls.write_new(tmp, data, mode, mtime_ns)


def _write_content(
    fd: int, blob_hash: bytes, chunks: list[ChunkRef], source: ChunkSource, again: bool = False
) -> bool:
    """Write the blob's chunks to the empty file open on fd; whether what was written has
    the blob's hash. `again`: each chunk got anew and checked (ChunkSource.get_again).

    A blob of one chunk is that chunk, which the source checks against this very hash; a
    larger one is hashed as it is written, its pieces taken unchecked."""
    whole = len(chunks) == 1 and chunks[0].hash == blob_hash and not chunks[0].offset
    hasher = None if whole else blake3.blake3()
    writer = content_writer(fd, _content_size(chunks), hasher)
    for position, ref in enumerate(chunks):
        try:
            data = source.get_again(ref) if again else source.get(ref, checked=whole)
        except BaseException:
            if not again:
                source.abandon(chunks[position + 1 :])
            raise
        writer.add(data)
    writer.finish()
    return hasher is None or hasher.digest() == blob_hash


def _content_size(chunks: list[ChunkRef]) -> int:
    return chunks[-1].offset + chunks[-1].length if chunks else 0


def sync_staged(staged: list[Staged]) -> None:
    """Flush staged files to disk: one filesystem sync for many files, much cheaper than an
    fsync each (every fsync forces a journal commit of its own)."""
    done: set[int] = set()
    for s in staged:
        if s.device not in done:
            sync_filesystem(os.path.dirname(s.tmp))
            done.add(s.device)


def expose(staged: Staged, expect: Entry | None) -> "os.stat_result | heldcalls.Status":
    """Rename a staged (and synced) file into place, only if the target is still the
    version `expect` describes, and return its status. The caller syncs the directory before
    it records the file."""
    try:
        if expect is None or not expect.exists:
            _rename_new(staged.tmp, staged.full)
        else:
            check_disk(staged.full, expect)
            os.replace(staged.tmp, staged.full)
    except BaseException:
        staged.discard()
        raise
    return heldcalls.lstat(staged.full) if heldcalls.available else os.lstat(staged.full)


def _rename_new(tmp: str, full: str) -> None:
    """Rename tmp to full, which must not exist (DiskChanged if it does): in one system call
    where the kernel and filesystem can refuse to replace (renameat2 RENAME_NOREPLACE),
    else a check then a rename. A missing directory is made."""
    for attempt in range(2):
        if not _noreplace:
            check_disk(full, None)
            try:
                return os.rename(tmp, full)
            except FileNotFoundError:
                error = errno.ENOENT
        else:
            error = heldcalls.rename_noreplace(tmp, full)
            if not error:
                return
        if error == errno.EEXIST:
            raise DiskChanged(f"{full} appeared")
        if error in (errno.EINVAL, errno.ENOSYS):
            _no_renameat2()  # not supported here: the other way, from now on
            continue
        if error == errno.ENOENT and not attempt and os.path.exists(tmp):
            make_directories(os.path.dirname(full), os.path.dirname(tmp))
            continue
        raise OSError(error, os.strerror(error), full)
    _rename_new(tmp, full)


def make_directories(directory: str, staging: str) -> None:
    """Make a directory and its missing parents, each made in `staging` first and renamed
    into place: a watcher of the area (peerd's) sees a rename out of the staging directory, as
    for every file put in place, and knows it for ours."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for target in reversed(missing):
        if os.path.dirname(target) == staging or not _noreplace:
            os.makedirs(target, exist_ok=True)
            continue
        made = temporary_name(staging)
        os.mkdir(made)
        try:
            _rename_new(made, target)
        except DiskChanged:  # made meanwhile by someone else: theirs will do
            os.rmdir(made)
            if not os.path.isdir(target):
                raise


def _no_renameat2() -> None:
    global _noreplace
    _noreplace = False


def sync_filesystem(path: Path) -> None:
    """syncfs(2) on the filesystem holding path (every dirty file of it reaches the disk)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs is None:
            os.sync()
        elif _syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
    finally:
        os.close(fd)


def sync_directories(directories: set[str]) -> None:
    """Make renames and removals in these directories durable."""
    existing = [d for d in directories if os.path.isdir(d)]
    if len(existing) <= 2:
        for d in existing:
            fsync_dir(d)
        return
    devices = {}
    for d in existing:
        devices.setdefault(os.stat(d).st_dev, d)
    for d in devices.values():
        sync_filesystem(d)


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
