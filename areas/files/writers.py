"""Writing a staged file's content: through the page cache for small files, straight to the
device (O_DIRECT) for large ones.

Every staged file is synced before it is exposed. For a large file, writing through the page
cache and then syncing it costs the kernel about ten times the CPU of writing it directly:
measured with dd on 512 MiB, 1.5 CPU-s and 1.7 s against 0.15 CPU-s and 0.4 s. Direct writes
need aligned memory, offsets and lengths, so the content is gathered in a page-aligned
buffer, written a buffer at a time, the last block padded, and the file then cut to its size.
Where the filesystem refuses direct I/O (tmpfs, some FUSE filesystems), or a direct write
fails half-way, the rest is written through the page cache.
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
# A file this large written through the page cache starts going to disk as soon as it is
# written, so that the sync before files are exposed finds little left (the kernel would
# otherwise wait until a tenth of memory is dirty).
WRITEBACK_FROM = 1024 * 1024
_O_DIRECT = getattr(os, "O_DIRECT", 0)
# Aligned buffers kept for direct writes, at most this many (one per file being written).
KEPT_BUFFERS = 4


class _AlignedBuffers:
    """Page-aligned buffers for direct writes, shared by the threads of the process: a writer
    takes one and gives it back when it is done. Kept once made: a new buffer is memory the
    kernel must fault in page by page as the content is first copied into it, holding the
    GIL (measured on this project's machine: about 4 ms a megabyte), and the threads that
    write files come and go with each window of changes (one buffer each, made anew, when
    they were kept per thread)."""

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
    """A writer for a new, empty file of `size` bytes open on fd; with a hasher (blake3),
    what it writes is hashed too, a write at a time: hashing each part as it is added would
    let go of the GIL, and take it back, once per part (see areas.files.syscalls)."""
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
    """Parts copied into a page-aligned buffer (taken from those kept, given back by finish),
    written from it."""

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

    def _write(self, length: int) -> None:
        """Write the buffer's first `length` bytes at the current offset (its content is
        what was filled, the rest padding)."""
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
