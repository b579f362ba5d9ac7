"""File content by chunks: read from the Real (verified), or fetched; files written atomically.

Real files are not copied into a store: a chunk is read from any indexed file that holds it,
at the offset its blob's chunk list gives, and its hash is checked before it is used, so a
file changed behind our back is never trusted.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import blake3

import areas.files.syscalls as syscalls
from areas.files.chunking import ChunkRef, chunk_hash
from areas.files.durable import sync_filesystem
from areas.files.paths import TEMP_PREFIX
from areas.files.writers import content_writer

if TYPE_CHECKING:
    from areas.models import Entry

# Neighbouring chunks of one file are read together, up to this many at once.
RUN_CHUNKS = 256
# A file of one chunk up to this size is staged in system calls that keep the GIL: a pull
# makes thousands of them, each call that lets go of the GIL waiting to take it back while
# the pull's other threads run Python (see heldcalls).
SMALL_FILE = 64 * 1024
# Renames refusing to replace (renameat2 RENAME_NOREPLACE, holding the GIL: heldcalls) until
# the kernel or filesystem says it cannot.
_noreplace = syscalls.available
# Temporary names: unique to this process and run, numbered (O_EXCL refuses any clash).
_TEMP_RUN = secrets.token_hex(4) + "-"
_temp_numbers = itertools.count()


class Chunks(Protocol):
    """Where a staged file's chunks come from (areas.pull.fetch.ChunkSource)."""

    def get(self, ref: ChunkRef, checked: bool = True) -> bytes | memoryview: ...

    def get_again(self, ref: ChunkRef) -> bytes | memoryview: ...

    def abandon(self, chunks: list[ChunkRef]) -> None: ...


class CorruptContent(ValueError):
    """Content whose hash is not the one it should have."""


class DiskChanged(RuntimeError):
    """The file on disk is not the version the index knows: it changed since the last scan."""


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


def create_staged(tmp: str, mode: int) -> int:
    """Open a new temporary file to write a staged file into; its directory is made if
    missing. O_EXCL: never one that exists. It is created with its permissions where the
    umask allows: each later change of them is one more event for every watcher."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, mode & 0o777)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        return os.open(tmp, flags, mode & 0o777)


def seal_staged(fd: int, mode: int, mtime_ns: int) -> int:
    """Give a written staged file its permissions and mtime; the device it is on.
    (syscalls.write_new does the same for small files, keeping the GIL.)"""
    st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) != mode & 0o7777:
        os.fchmod(fd, mode & 0o7777)
    os.utime(fd, ns=(mtime_ns, mtime_ns))
    return st.st_dev


def stage_file(
    full: str,
    blob_hash: bytes,
    chunks: list[ChunkRef],
    source: Chunks,
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
    if syscalls.available and _is_small(blob_hash, chunks):
        return Staged(tmp, full, _stage_small(tmp, blob_hash, chunks, source, mtime_ns, mode))
    fd = create_staged(tmp, mode)
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
        device = seal_staged(fd, mode, mtime_ns)
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
    source: Chunks,
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
        return syscalls.write_new(tmp, data, mode, mtime_ns)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        return syscalls.write_new(tmp, data, mode, mtime_ns)


def _write_content(
    fd: int, blob_hash: bytes, chunks: list[ChunkRef], source: Chunks, again: bool = False
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


def expose(staged: Staged, expect: Entry | None) -> os.stat_result | syscalls.Status:
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
    return syscalls.lstat(staged.full) if syscalls.available else os.lstat(staged.full)


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
            error = syscalls.rename_noreplace(tmp, full)
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


def clean_temporary_files(root: Path) -> None:
    """Remove what an interrupted write left behind (never visible under a real name)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                Path(dirpath, name).unlink(missing_ok=True)
