"""Reusable buffers for megabyte frames and reads.

A fresh `bytearray(4 MiB)` is memory the kernel must fault in and zero page by page: for the
frames of chunk contents a pulling peer receives, that cost its worker 0.35 CPU-s per 500 MB
(more than decrypting them), holding the GIL all along. A pool hands out buffers already
faulted in, each again once nothing refers to it any more.

Whoever receives a view of a pooled buffer may keep it as long as it likes: the buffer is
reused only when the last view of it is gone (its reference count says so), never under
someone still reading it.
"""

import sys
import threading

# Smaller requests are not worth pooling; larger ones are rare (the frame limit is 16 MiB).
MIN_POOLED = 256 * 1024
# At most this many buffers are kept per pool; beyond, buffers are made and dropped as usual.
MAX_BUFFERS = 24
# Buffers are made with room to spare, so that one serves frames of slightly different sizes.
GRAIN = 1024 * 1024


class BufferPool:
    def __init__(self, max_buffers: int = MAX_BUFFERS):
        self.max_buffers = max_buffers
        self._buffers: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, n: int) -> memoryview:
        """A writable view of n bytes (contents undefined), not shared with anyone."""
        if n < MIN_POOLED:
            return memoryview(bytearray(n))
        with self._lock:
            for buf in self._buffers:
                # References: the list, this loop's variable and getrefcount's argument. Any
                # view given out before holds one more for as long as it lives.
                if len(buf) >= n and sys.getrefcount(buf) == 3:
                    return memoryview(buf)[:n]
            buf = bytearray(-(-n // GRAIN) * GRAIN)
            if len(self._buffers) < self.max_buffers:
                self._buffers.append(buf)
            return memoryview(buf)[:n]

    def clear(self) -> None:
        with self._lock:
            self._buffers.clear()
