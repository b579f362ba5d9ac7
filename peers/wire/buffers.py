"""Reusable buffers for megabyte frames and reads.

Fresh memory is faulted in page by page, costing more than decryption and holding the GIL;
a pool hands out buffers already faulted in. A buffer is reused only once no view of it is
left (its reference count), so a view may be kept as long as needed.

Buffers are anonymous maps, not bytearrays: a bytearray is zeroed holding the GIL, while a
map's pages are faulted in as data is received, with the GIL let go. One pool serves the
process (`SHARED`), not one per connection; buffers idle for IDLE_SECONDS are let go.
"""

import mmap
import sys
import threading
import time

# Smaller requests are not worth pooling; larger ones are rare (the frame limit is 16 MiB).
MIN_POOLED = 256 * 1024
# At most this many buffers are kept per pool; beyond, buffers are made and dropped as usual.
MAX_BUFFERS = 64
IDLE_SECONDS = 60.0
# Buffers are made with room to spare, so that one serves frames of slightly different sizes.
GRAIN = 1024 * 1024


class BufferPool:
    def __init__(self, max_buffers: int = MAX_BUFFERS, idle_seconds: float = IDLE_SECONDS):
        self.max_buffers = max_buffers
        self.idle_seconds = idle_seconds
        self._buffers: list[mmap.mmap] = []
        self._taken: list[float] = []  # when each was last handed out (time.monotonic())
        self._lock = threading.Lock()

    def take(self, n: int) -> memoryview:
        """A writable view of n bytes (contents undefined), not shared with anyone."""
        if n < MIN_POOLED:
            return memoryview(bytearray(n))
        now = time.monotonic()
        with self._lock:
            for i in range(len(self._buffers)):
                buf = self._buffers[i]
                # References: the list, this variable and getrefcount's argument. Any view
                # given out before holds one more for as long as it lives.
                if len(buf) >= n and sys.getrefcount(buf) == 3:
                    self._taken[i] = now
                    return memoryview(buf)[:n]
            self._let_go_idle(now)
            buf = mmap.mmap(-1, -(-n // GRAIN) * GRAIN)
            if len(self._buffers) < self.max_buffers:
                self._buffers.append(buf)
                self._taken.append(now)
            return memoryview(buf)[:n]

    def _let_go_idle(self, now: float) -> None:
        kept = [
            (buf, taken)
            for buf, taken in zip(self._buffers, self._taken, strict=True)
            if now - taken < self.idle_seconds
        ]
        self._buffers = [buf for buf, _ in kept]
        self._taken = [taken for _, taken in kept]

    def clear(self) -> None:
        with self._lock:
            self._buffers.clear()
            self._taken.clear()


SHARED = BufferPool()
