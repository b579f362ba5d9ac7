"""Writing a staged file's content: page cache for small files, O_DIRECT for large ones.

Every staged file is synced before exposure; for large files a direct write costs the kernel
far less CPU than the page cache and a sync. Direct writes need alignment, so content goes
through a page-aligned buffer, the last block padded and the file cut to size. Where direct
I/O is refused (tmpfs, some FUSE) or fails half-way, the rest goes through the page cache.
"""

import errno
import fcntl
import mmap
import os
import threading

from areas.files.syscalls import start_writeback

# A file written this much at a time, in one system call (one change event for watchers).
WRITE_BYTES = 8 * 1024 * 1024
IOV_MAX = 1024
# Files at least this large are written directly to the device.
DIRECT_FROM = 1024 * 1024
# Direct I/O alignment: of the buffer's address, the file offset and each write's length.
ALIGN = 4096
# Files this large start writeback at once, so the sync before exposing finds little left
# (the kernel would otherwise wait for much dirty memory).
WRITEBACK_FROM = 1024 * 1024
_O_DIRECT = getattr(os, "O_DIRECT", 0)
# Aligned buffers kept for direct writes, at most this many (one per file being written).
KEPT_BUFFERS = 4


class _AlignedBuffers:
    """Page-aligned buffers for direct writes, shared by the process's threads.

    Kept once made: a new buffer is faulted in page by page, holding the GIL, and the writing
    threads come and go with each window of changes."""

    def __init__(self, keep: int):
        self.keep = keep
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, WRITE_BYTES)  # page-aligned

    def give(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(buffer)


_buffers = _AlignedBuffers(KEPT_BUFFERS)


def content_writer(fd: int, size: int, hasher=None) -> "BufferedWriter | DirectWriter":
    """A writer for a new, empty file of `size` bytes on fd, hashing with `hasher` if given.

    Hashing is per write, not per part: each hash call lets go of the GIL (areas.files.syscalls)."""
    if size >= DIRECT_FROM and _O_DIRECT and _set_direct(fd, True):
        return DirectWriter(fd, hasher)
    return BufferedWriter(fd, size, hasher)


def _set_direct(fd: int, on: bool) -> bool:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT if on else flags & ~_O_DIRECT)
    except OSError:
        return False
    return True


class BufferedWriter:
    """Parts gathered, then written in as few system calls as the kernel allows."""

    def __init__(self, fd: int, size: int, hasher=None):
        self.fd, self.size, self.hasher = fd, size, hasher
        self.held: list[memoryview] = []
        self.held_bytes = 0

    def add(self, data: bytes | memoryview) -> None:
        if data:
            self.held.append(memoryview(data))
            self.held_bytes += len(data)
            if self.held_bytes >= WRITE_BYTES:
                self._write()

    def finish(self) -> None:
        self._write()
        if self.size >= WRITEBACK_FROM:
            start_writeback(self.fd)

    def _write(self) -> None:
        views, self.held, self.held_bytes = self.held, [], 0
        if self.hasher is not None and views:
            self.hasher.update(views[0] if len(views) == 1 else b"".join(views))
        while views:
            written = os.writev(self.fd, views[:IOV_MAX])
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]


class DirectWriter:
    """Parts copied into a kept page-aligned buffer and written from it; finish gives it back."""

    def __init__(self, fd: int, hasher=None):
        self.fd, self.hasher = fd, hasher
        self.buffer = _buffers.take()
        self.view = memoryview(self.buffer)
        self.filled = 0
        self.offset = 0
        self.direct = True

    def add(self, data: bytes | memoryview) -> None:
        data = memoryview(data)
        while data:
            n = min(len(data), WRITE_BYTES - self.filled)
            self.view[self.filled : self.filled + n] = data[:n]
            self.filled += n
            data = data[n:]
            if self.filled == WRITE_BYTES:
                self._write(WRITE_BYTES)

    def finish(self) -> None:
        """Write what is left and give the buffer back; once only, even when writing fails
        (a full disk), so a second call does nothing."""
        if self.buffer is None:
            return
        try:
            if self.filled:
                end = self.offset + self.filled
                padded = -(-self.filled // ALIGN) * ALIGN  # the last block, padded with zeros
                self.view[self.filled : padded] = bytes(padded - self.filled)
                self._write(padded)
                os.ftruncate(self.fd, end)
        finally:
            self.view.release()
            _buffers.give(self.buffer)
            self.buffer = None

    def _write(self, length: int) -> None:
        """Write the buffer's first `length` bytes (filled content, then padding) at the offset."""
        if self.hasher is not None:
            self.hasher.update(self.view[: self.filled])
        done = 0
        while done < length:
            try:
                written = os.pwrite(self.fd, self.view[done:length], self.offset + done)
            except OSError:
                if not self.direct:
                    raise
                written = 0
            if not self.direct and not written:
                raise OSError(errno.EIO, "a write wrote nothing")
            if self.direct and written != length - done:
                # Refused or cut short: the rest goes through the page cache.
                self.direct = False
                _set_direct(self.fd, False)
            done += written
        self.offset += self.filled  # the padding of the last block is cut off again
        self.filled = 0
