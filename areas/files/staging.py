"""Staging files from chunks: written to a temporary file, checked, then renamed into place.

Nothing appears under its real name until its content is whole, checked and synced.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import blake3

import areas.files.syscalls as syscalls
from areas.files.chunking import ChunkRef, chunk_hash
from areas.files.durable import sync_filesystem
from areas.files.paths import TEMP_PREFIX, is_ignored
from areas.files.writers import content_writer

if TYPE_CHECKING:
    from areas.models import Entry

# One-chunk files up to this size are staged in calls that keep the GIL: a pull makes
# thousands, and retaking the GIL beside busy threads is slow (see areas.files.syscalls).
SMALL_FILE = 64 * 1024
# Renames refuse to replace (renameat2 RENAME_NOREPLACE, keeping the GIL) until the kernel or
# filesystem says it cannot.
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

    A directory of REALIZE_HOME, emptied of leftovers, if it can rename into the area: watchers
    then see one rename per file, not every write. None otherwise: files are staged beside
    their final place. The directory stays: peerd's watcher watches it to recognise our renames.
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
    """Open a new temporary file (O_EXCL) to stage into, making its directory if missing.

    Created with its permissions where the umask allows: each later change is a watcher event."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, mode & 0o777)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        return os.open(tmp, flags, mode & 0o777)


def seal_staged(fd: int, mode: int, mtime_ns: int) -> int:
    """Give a written staged file its permissions and mtime; return its device.

    syscalls.write_new does the same for small files, keeping the GIL."""
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
    """Write a blob to a temporary file (in `staging`, else beside `full`), checking its hash.

    Nothing is visible under the real name yet: `sync_staged` makes a batch durable, then
    `expose` renames each into place.
    """
    tmp = temporary_name(staging or os.path.dirname(full))
    if syscalls.available and _is_small(blob_hash, chunks):
        return Staged(tmp, full, _stage_small(tmp, blob_hash, chunks, source, mtime_ns, mode))
    fd = create_staged(tmp, mode)
    try:
        if not _write_content(fd, blob_hash, chunks, source):
            # A piece taken unchecked was wrong: get every piece again, each checked
            # (one the peer keeps sending wrong comes from another peer).
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
    """stage_file for a small file, made in calls that keep the GIL; return its device.

    The source checks the content against the blob's hash."""
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
    """Write the blob's chunks to the empty file on fd; whether the result has the blob's hash.

    `again`: each chunk got anew and checked (ChunkSource.get_again). A one-chunk blob is
    checked by the source; a larger one is hashed as written, its pieces taken unchecked."""
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
    """Flush staged files to disk with one filesystem sync per device.

    Much cheaper than an fsync each: every fsync forces a journal commit of its own."""
    done: set[int] = set()
    for s in staged:
        if s.device not in done:
            sync_filesystem(os.path.dirname(s.tmp))
            done.add(s.device)


def expose(staged: Staged, expect: Entry | None) -> os.stat_result | syscalls.Status:
    """Rename a staged, synced file into place if the target is still `expect`; its status.

    The caller syncs the directory before it records the file."""
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
    """Rename tmp to full, which must not exist (else DiskChanged); makes a missing directory.

    One atomic call where renameat2 RENAME_NOREPLACE works, else a check then a rename."""
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
    """Make a directory and its missing parents, each made in `staging` and renamed into place.

    peerd's watcher then sees a rename out of staging, as for files, and knows it for ours."""
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


# A temporary file untouched this long was left by a write that ended; a younger one may be
# a write under way (the mount realizing a file, another run): it is left alone.
STALE_AFTER = 600.0


def clean_temporary_files(root: Path, stale_after: float = STALE_AFTER) -> None:
    """Remove what an interrupted write left behind (never visible under a real name)."""
    before = time.time() - stale_after
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if is_ignored(name):
                path = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    if path.lstat().st_mtime < before:
                        path.unlink(missing_ok=True)
