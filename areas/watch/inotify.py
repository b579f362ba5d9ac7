"""Linux inotify, read straight from its file descriptor: which watched directory changed.

A pull makes an event per file. Read in the event loop they are cheap; a watching library's
threads and queues cost far more, taken from serving the pull's data.
"""

import errno
import os
import struct
from collections.abc import Iterator

from areas.files import syscalls

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = 0o2000000
# What changes files; opening and reading them (a peer being served, a scan) is not asked for.
CHANGES = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
    | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, length of the name


class Event:
    __slots__ = ("wd", "mask", "name", "cookie")

    def __init__(self, wd: int, mask: int, name: str, cookie: int = 0):
        self.wd, self.mask, self.name, self.cookie = wd, mask, name, cookie


class Inotify:
    """One inotify instance (non-blocking): directories added, events read in batches."""

    def __init__(self):
        self.fd = syscalls.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)

    def add(self, directory: str, mask: int = CHANGES) -> int | None:
        """Watch a directory (not a symlink) for `mask`'s events; None if gone or not one."""
        wd = syscalls.inotify_add_watch(self.fd, directory, mask | IN_ONLYDIR | IN_DONT_FOLLOW)
        if wd < 0:
            error = -wd
            if error in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                return None
            raise OSError(error, f"inotify watch of {directory}: {os.strerror(error)}")
        return wd

    def remove(self, wd: int) -> None:
        syscalls.inotify_rm_watch(self.fd, wd)  # one already gone is no error worth raising

    def read(self) -> Iterator[Event]:
        """Every event waiting now (none if there are none)."""
        while True:
            try:
                data = os.read(self.fd, 256 * 1024)
            except BlockingIOError:
                return
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                raw = data[offset : offset + length].rstrip(b"\0")
                offset += length
                yield Event(wd, mask, os.fsdecode(raw), cookie)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
