"""System calls that keep the GIL, for a sync's many tiny file operations (rename, stat, create).

Each `os` call lets go of the GIL and must wait up to the switch interval to take it back
beside busy threads; thousands of them then mostly wait. A metadata call is brief, so holding
the GIL costs others less. Bulk reads and writes still let go of it.

Linux only (renameat2, statx); elsewhere `available` is False and callers use `os`.
Calls `os` lacks (syncfs, sync_file_range, inotify) are here too, letting go of the GIL.
This is the one module that loads the C library.
"""

import ctypes
import os
from typing import NamedTuple

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_BASIC_STATS = 0x7FF


class _Timestamp(ctypes.Structure):
    _fields_ = [
        ("tv_sec", ctypes.c_int64),
        ("tv_nsec", ctypes.c_uint32),
        ("_reserved", ctypes.c_int32),
    ]


class _Statx(ctypes.Structure):
    _fields_ = [
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("_spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _Timestamp),
        ("stx_btime", _Timestamp),
        ("stx_ctime", _Timestamp),
        ("stx_mtime", _Timestamp),
        ("stx_rdev_major", ctypes.c_uint32),
        ("stx_rdev_minor", ctypes.c_uint32),
        ("stx_dev_major", ctypes.c_uint32),
        ("stx_dev_minor", ctypes.c_uint32),
        ("_spare", ctypes.c_uint64 * 14),
    ]


class Status(NamedTuple):
    """What this project reads of a file's status, named as os.stat_result names it."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_size: int
    st_mtime_ns: int
    st_ctime_ns: int


def _bind(name: str, argtypes: list, restype=ctypes.c_int) -> object | None:
    function = getattr(_libc, name, None) if _libc is not None else None
    if function is not None:
        function.argtypes = argtypes
        function.restype = restype
    return function


try:
    _libc = ctypes.PyDLL(None, use_errno=True)  # calls keep the GIL
    _releasing = ctypes.CDLL(None, use_errno=True)  # calls let go of it
except OSError:  # no C library to load (not Linux): os is used instead
    _libc = _releasing = None
_path, _int, _uint = ctypes.c_char_p, ctypes.c_int, ctypes.c_uint
_renameat2 = _bind("renameat2", [_int, _path, _int, _path, _uint])
_statx = _bind("statx", [_int, _path, _int, _uint, ctypes.c_void_p])
_open = _bind("open", [_path, _int, _uint])
_read = _bind("read", [_int, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_ssize_t)
_write = _bind("write", [_int, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_ssize_t)
_fchmod = _bind("fchmod", [_int, _uint])
_futimens = _bind("futimens", [_int, ctypes.c_void_p])
_close = _bind("close", [_int])
_unlink = _bind("unlink", [_path])
available = None not in (
    _renameat2, _statx, _open, _read, _write, _fchmod, _futimens, _close, _unlink
)  # fmt: skip
_AT_EMPTY_PATH = 0x1000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_EINTR = 4


def _error(path: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code), path)  # FileNotFoundError for ENOENT, and so on


def rename_noreplace(source: str, target: str) -> int:
    """Rename source to target unless target exists: 0, or the error number (EEXIST if it
    exists; EINVAL or ENOSYS where the kernel or filesystem cannot refuse to replace)."""
    if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), 1):
        return ctypes.get_errno()
    return 0


def lstat(path: str) -> Status:
    """os.lstat(path), the fields of Status only."""
    return _status(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, path)


def _status(dirfd: int, name: bytes, flags: int, path: str) -> Status:
    buffer = _Statx()
    if _statx(dirfd, name, flags, _STATX_BASIC_STATS, ctypes.byref(buffer)):
        raise _error(path)
    return Status(
        buffer.stx_mode,
        buffer.stx_ino,
        os.makedev(buffer.stx_dev_major, buffer.stx_dev_minor),
        buffer.stx_size,
        buffer.stx_mtime.tv_sec * 1_000_000_000 + buffer.stx_mtime.tv_nsec,
        buffer.stx_ctime.tv_sec * 1_000_000_000 + buffer.stx_ctime.tv_nsec,
    )


def read_small(path: str, limit: int) -> bytes:
    """Up to `limit` bytes of a small file, read into one buffer.

    Opened non-blocking: a file that became a pipe since it was walked cannot stall us."""
    fd = _open(os.fsencode(path), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK, 0)
    if fd < 0:
        raise _error(path)
    try:
        buffer = ctypes.create_string_buffer(limit)
        start = ctypes.addressof(buffer)
        got = 0
        while got < limit:
            n = _read(fd, start + got, limit - got)
            if n < 0:
                if ctypes.get_errno() == _EINTR:
                    continue
                raise _error(path)
            if n == 0:
                break
            got += n
        return buffer.raw[:got]
    finally:
        _close(fd)


def write_new(path: str, data: bytes, mode: int, mtime_ns: int) -> int:
    """Create the small file `path` (FileExistsError if it exists) with data, mode and mtime.

    Returns its device. A file left half-made by an error is removed."""
    name = os.fsencode(path)
    fd = _open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o777)
    if fd < 0:
        raise _error(path)
    try:
        done = 0
        while done < len(data):
            n = _write(fd, data[done:] if done else data, len(data) - done)
            if n < 0:
                if ctypes.get_errno() == _EINTR:
                    continue
                raise _error(path)
            done += n
        status = _status(fd, b"", _AT_EMPTY_PATH, path)
        if status.st_mode & 0o7777 != mode & 0o7777:  # the umask took some away
            if _fchmod(fd, mode & 0o7777):
                raise _error(path)
        seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
        times = (_Timespec * 2)((seconds, nanoseconds), (seconds, nanoseconds))
        if _futimens(fd, times):
            raise _error(path)
        return status.st_dev
    except BaseException:
        _unlink(name)
        raise
    finally:
        _close(fd)


# --- calls that let go of the GIL ---------------------------------------------------------
_syncfs = getattr(_releasing, "syncfs", None)
_sync_file_range = getattr(_releasing, "sync_file_range", None)
SYNC_FILE_RANGE_WRITE = 2


def syncfs(fd: int) -> None:
    """syncfs(2): every dirty file of the filesystem holding fd reaches the disk."""
    if _syncfs is None:
        os.sync()
    elif _syncfs(fd) != 0:
        raise _error("syncfs")


def start_writeback(fd: int) -> None:
    """Start writing the file's dirty pages out now, without waiting for them."""
    if _sync_file_range is not None:
        _sync_file_range(fd, ctypes.c_longlong(0), ctypes.c_longlong(0), SYNC_FILE_RANGE_WRITE)


def inotify_init1(flags: int) -> int:
    fd = _releasing.inotify_init1(flags)
    if fd < 0:
        raise _error("inotify")
    return fd


def inotify_add_watch(fd: int, directory: str, mask: int) -> int:
    """A watch descriptor, or -errno (the caller decides which errors matter)."""
    wd = _releasing.inotify_add_watch(fd, os.fsencode(directory), mask)
    return wd if wd >= 0 else -ctypes.get_errno()


def inotify_rm_watch(fd: int, wd: int) -> None:
    _releasing.inotify_rm_watch(fd, wd)


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> bool:
    """Have the kernel send `sig` to this process when the thread that started it ends.

    For helper processes that must not outlive a parent killed outright (no cleanup runs
    then). Whether the kernel took it (Linux only)."""
    prctl = getattr(_releasing, "prctl", None)
    return prctl is not None and prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig)) == 0
