"""The worker's side of the stager (areas.stager.process), which stages large new files.

One stager per worker, started at the first job and restarted if it died; `submit` gives a
Future of the Staged file. Any failure raises NotStaged and the caller stages the file itself
(areas.files.staging.stage_file): the stager is a shortcut, never the only way.
"""

import itertools
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import Future

from areas.files import Staged
from peers.client import DIALLED
from peers.wire import ProtocolError, pack, read_stream_frame

log = logging.getLogger(__name__)


class NotStaged(Exception):
    """The stager did not stage the file; the worker must."""


class _Process:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "areas.stager.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=os.environ.copy(),
        )
        self.futures: dict[int, tuple[Future, str, str]] = {}  # id -> (future, tmp, full)
        self.counted: dict[str, tuple[int, int]] = {}  # the stager's traffic, per peer
        self.alive = True
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="stager-replies", daemon=True)
        self.reader.start()

    def send(self, message: dict) -> None:
        data = pack(message)
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _read(self) -> None:
        stream = self.proc.stdout
        try:
            while (reply := read_stream_frame(stream)) is not None:
                if "traffic" in reply:
                    self._count(reply["traffic"])
                else:
                    self._settle(reply)
        except (OSError, ProtocolError, ValueError) as exc:
            log.warning("the stager's replies could not be read: %s", exc)
        finally:
            self._gone()

    def _count(self, totals: dict) -> None:
        """The stager's data link traffic (its totals, per peer), counted as this process's:
        the worker's sampler writes it (realize_site.sampling)."""
        for peer, (sent, received) in totals.items():
            was_sent, was_received = self.counted.get(peer, (0, 0))
            DIALLED.add(peer, sent - was_sent, received - was_received)
            self.counted[peer] = (sent, received)

    def _settle(self, reply: dict) -> None:
        with self.lock:
            entry = self.futures.pop(reply.get("id"), None)
        if entry is None:
            return
        future, tmp, full = entry
        if reply.get("ok"):
            future.set_result((Staged(tmp, full, reply["device"]), reply.get("bytes", 0)))
        else:
            future.set_exception(NotStaged(reply.get("error") or "cancelled"))

    def _gone(self) -> None:
        with self.lock:
            self.alive = False
            left, self.futures = list(self.futures.values()), {}
        for future, tmp, _ in left:
            future.set_exception(NotStaged("the stager stopped"))
            try:
                os.unlink(tmp)  # it may have been writing it
            except FileNotFoundError:
                pass

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class RemoteStaging:
    """The stager of this process (made at the first job)."""

    def __init__(self) -> None:
        self._process: _Process | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def submit(
        self,
        peer: tuple,
        tmp: str,
        full: str,
        blob: bytes,
        size: int,
        chunks: list,
        mtime_ns: int,
        mode: int,
    ) -> Future:
        """Stage a blob fetched from `peer` (address, key, our name, timeout, its name) at tmp.

        Its chunks are ChunkRefs, none of them here. A Future of (Staged, bytes received)."""
        future: Future = Future()
        job = {
            "address": peer[0],
            "key": peer[1],
            "name": peer[2],
            "timeout": peer[3],
            "peer": peer[4],
            "tmp": tmp,
            "blob": blob,
            "size": size,
            "chunks": [[c.offset, c.length] for c in chunks],
            "mtime_ns": mtime_ns,
            "mode": mode,
        }
        with self._lock:
            process = self._running()
            if process is None:
                future.set_exception(NotStaged("the stager could not start"))
                return future
            job["id"] = next(self._ids)
            with process.lock:
                if not process.alive:
                    future.set_exception(NotStaged("the stager stopped"))
                    return future
                process.futures[job["id"]] = (future, tmp, full)
            try:
                process.send({"job": job})
            except OSError:
                with process.lock:
                    process.futures.pop(job["id"], None)
                future.set_exception(NotStaged("the stager stopped"))
            else:
                future.job_id = job["id"]  # for cancel
        return future

    def start(self) -> None:
        """Start the stager now if not running: a Python process is slow to start."""
        with self._lock:
            self._running()

    def cancel(self, future: Future) -> None:
        """Do not start this file if it is not started yet (its Future then fails)."""
        job_id = getattr(future, "job_id", None)
        with self._lock:
            process = self._process
            if job_id is None or process is None or not process.alive:
                return
            try:
                process.send({"cancel": job_id})
            except OSError:
                pass

    def _running(self) -> _Process | None:
        if self._process is not None and self._process.alive:
            return self._process
        try:
            self._process = _Process()
        except OSError as exc:
            log.warning("the stager could not start: %s", exc)
            self._process = None
        return self._process

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.stop()


STAGING = RemoteStaging()
