"""Hashing the files a scan found changed, in child processes where allowed (peerd), else threads.

In threads, each chunk hashed must take the GIL back, which is slow beside busy threads.
In processes, peerd's scans use the other cores and its GIL stays with serving peers.
Small files are hashed by the scanning thread, keeping the GIL: handing one over costs more.
No database here: a child imports only this module, areas.files.chunking and areas.files.syscalls.
"""

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import areas.files.syscalls as heldcalls
from areas.files.chunking import MIN_SIZE, Hashed, hash_bytes, hash_file

log = logging.getLogger(__name__)
# Files are hashed a group at a time: thousands of small files do not cost a task each.
GROUP = 16
WORKERS = min(2, os.cpu_count() or 1)
# Files up to this size are hashed by the scanning thread (hash_small).
SMALL = MIN_SIZE

File = tuple[str, str, os.stat_result]  # relative path, full path, status when walked
Found = tuple[str, os.stat_result, Hashed]  # relative path, status when hashed, content


def hash_one(file: File) -> Found | None:
    """The file's content; None if gone, unreadable, or changed while read (rescanned later)."""
    rel, full, st = file
    try:
        hashed = hash_file(full)
        after = os.lstat(full)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        return None
    return rel, after, hashed


def hash_small(file: File) -> Found | None:
    """hash_one for a small file, keeping the GIL throughout (areas.files.syscalls)."""
    rel, full, st = file
    if not heldcalls.available:
        return hash_one(file)
    try:
        data = heldcalls.read_small(full, SMALL + 1)
        after = heldcalls.lstat(full)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    if len(data) > SMALL:
        return hash_one(file)  # grown since the walk: read as a large file is
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or len(data) != (
        after.st_size
    ):
        return None
    return rel, after, hash_bytes(data)


def _is_small(file: File) -> bool:
    return file[2].st_size <= SMALL


def hash_group(files: list[File]) -> list[Found | None]:
    return [hash_one(file) for file in files]


def _child_start(parent: int) -> None:
    """In a hashing process, ignore Ctrl-C: the parent stops it by closing its pipes.

    A parent killed outright closes nothing, and its siblings keep the pipes open: the
    kernel ends the child with it instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    heldcalls.die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the kernel was asked
        os._exit(1)


class _Processes:
    """The process pool of this process, made when first needed, if `enable` was called."""

    def __init__(self) -> None:
        self.enabled = False
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ProcessPoolExecutor | None:
        if not self.enabled:
            return None
        with self._lock:
            if self._pool is None:
                try:
                    # Spawned, not forked: the process asking runs threads and an event loop.
                    context = multiprocessing.get_context("spawn")
                    self._pool = ProcessPoolExecutor(
                        WORKERS,
                        mp_context=context,
                        initializer=_child_start,
                        initargs=(os.getpid(),),
                    )
                except (OSError, AssertionError, ValueError) as exc:
                    log.warning("hashing in threads: no process pool here (%s)", exc)
                    self.enabled = False
                    return None
            return self._pool

    def broken(self, pool: ProcessPoolExecutor) -> None:
        """A child died: the next scan gets a new pool, and the other children are ended.

        A survivor may wait forever for a queue lock the dead child held, blocking our exit."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        children = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for child in children:
            child.terminate()

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_processes = _Processes()


def use_processes() -> None:
    """Hash in child processes from now on (for a long-lived process, peerd).

    Every child starts now: a spawned pool would start them lazily, during the first scan."""
    _processes.enabled = True
    pool = _processes.get()
    if pool is None:
        return
    try:
        for started in [pool.submit(hash_group, []) for _ in range(WORKERS)]:
            started.result()
    except BrokenProcessPool as exc:  # a child could not start: threads it is
        log.warning("hashing in threads: the hashing processes did not start (%s)", exc)
        _processes.broken(pool)
        _processes.enabled = False


def stop_processes() -> None:
    _processes.shutdown()


def hashed(files: list[File]) -> Iterator[Found | None]:
    """Each file's content (or None), in order.

    Large files are handed out first, so they hash while the small ones are hashed here."""
    large = _large([file for file in files if not _is_small(file)])
    for file in files:
        yield hash_small(file) if _is_small(file) else next(large)


def _large(files: list[File]) -> Iterator[Found | None]:
    """Each file's content (or None), in order; the processes start on them at once."""
    if len(files) < 8:
        return map(hash_one, files)
    groups = [files[i : i + GROUP] for i in range(0, len(files), GROUP)]
    pool = _processes.get()
    if pool is None:
        return _in_threads(groups)
    try:
        mapped = _in_processes(pool, groups)
    except BrokenProcessPool:
        _broken(pool)
        return _in_threads(groups)
    return _from_processes(pool, mapped, groups)


def _from_processes(pool, mapped: Iterator[list], groups: list[list[File]]) -> Iterator:
    done = 0
    try:
        for group in mapped:
            done += 1
            yield from group
        return
    except BrokenProcessPool:
        _broken(pool)
    yield from _in_threads(groups[done:])


def _broken(pool: ProcessPoolExecutor) -> None:
    log.warning("a hashing process died: the rest of the scan hashes in threads")
    _processes.broken(pool)


def _in_processes(pool: ProcessPoolExecutor, groups: list[list[File]]) -> Iterator[list]:
    try:
        return pool.map(hash_group, groups)
    except OSError as exc:  # the pool broke while the work was handed over (a child died)
        raise BrokenProcessPool(str(exc)) from exc


def _in_threads(groups: list[list[File]]) -> Iterator[Found | None]:
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="scan-hash") as pool:
        yield from _each(pool, groups)


def _each(pool: Executor, groups: list[list[File]]) -> Iterator[Found | None]:
    for group in pool.map(hash_group, groups):
        yield from group
