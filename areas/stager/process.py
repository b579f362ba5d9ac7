"""The stager: a process of its own that fetches large new files from a peer and stages them.

In the worker, large files' bytes would compete for the GIL with many small files; here they
go over a data link of their own. Started by areas.stager.launcher, it reads jobs and
cancellations as frames (peers.wire.frames) on stdin and replies on stdout, one per job.

A job is staged as areas.files.staging.stage_file does: a checked temporary file, renamed
into place by the worker. A failed file is removed and the worker stages it itself.
Up to DEPTH requests are in flight, so the peer sends the next while we write.
"""

import os
import queue
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass, field

import blake3

from areas.files import content_writer, create_staged, seal_staged
from peers.client import DIALLED, Link
from peers.identity import load_identity
from peers.wire import ProtocolError, RemoteError, pack, read_stream_frame

# Content bytes asked for in one request, and requests on their way at once.
BATCH_BYTES = 4 * 1024 * 1024
DEPTH = 4
# Files received in full and waiting to be finished, at most.
FINISHING = 2


class JobFailed(Exception):
    pass


@dataclass
class Job:
    id: int
    peer: tuple  # (address, key, our name, timeout, its name)
    tmp: str
    blob: bytes
    size: int
    mtime_ns: int
    mode: int
    batches: list  # [[(offset, length), ...], ...]: the ranges of the blob asked at once
    sent: int = 0
    answered: int = 0
    fd: int | None = None
    writer: object = None
    hasher: object = None
    error: str | None = None
    received: int = 0
    done: bool = field(default=False)


def batches_of(chunks: list) -> list:
    """The blob's chunks ((offset, length) in order) as ranges, a batch at a time."""
    out, batch, start, end, held = [], [], None, None, 0
    for offset, length in chunks:
        if start is not None and offset == end:
            end += length
        else:
            if start is not None:
                batch.append((start, end - start))
            start, end = offset, offset + length
        held += length
        if held >= BATCH_BYTES:
            batch.append((start, end - start))
            out.append(batch)
            batch, start, end, held = [], None, None, 0
    if start is not None:
        batch.append((start, end - start))
    if batch:
        out.append(batch)
    return out


class Stager:
    def __init__(self, inbox: queue.Queue, reply):
        self.inbox, self.reply = inbox, reply
        self.cancelled: set[int] = set()
        self.queued: deque[Job] = deque()  # not every batch asked for yet
        self.waiting: deque[tuple[Job, int]] = deque()  # asked, not answered: (job, request id)
        self.link = None
        self.link_for: tuple | None = None
        self.ids = 0
        self.over = False
        # Received files are finished (written out, checked) by another thread while the
        # next arrive: a direct write waits for the disk.
        self.finishing: queue.Queue = queue.Queue(maxsize=FINISHING)

    def run(self) -> None:
        finisher = threading.Thread(target=self._finisher, name="finisher", daemon=True)
        finisher.start()
        try:
            while not (self.over and not self.queued and not self.waiting):
                self._take_messages(block=not (self.queued or self.waiting))
                self._ask()
                if self.waiting:
                    self._receive_one()
        finally:
            self.finishing.put(None)
            finisher.join()

    def _finisher(self) -> None:
        while (job := self.finishing.get()) is not None:
            if self.over:  # the worker is gone: nobody would take it
                self._fail(job, "the worker stopped")
                continue
            try:
                self._finish(job)
            except Exception as exc:  # noqa: BLE001 - the worker waits for an answer to each job
                self._fail(job, f"staging failed: {exc}", kind="os")

    def _take_messages(self, block: bool) -> None:
        while not self.over:
            try:
                message = self.inbox.get(block=block)
            except queue.Empty:
                return
            block = False
            if message is None:  # the worker is gone, or stops us: nobody takes files now
                self.over = True
                self._abandon()
            elif "cancel" in message:
                self.cancelled.add(message["cancel"])
            else:
                self.queued.append(_job(message))

    def _abandon(self) -> None:
        for job in [*self.queued, *(job for job, _ in self.waiting)]:
            self._fail(job, "the worker stopped")
        self.queued.clear()
        self.waiting.clear()
        self._link_broke(None)

    def _ask(self) -> None:
        while self.queued and len(self.waiting) < DEPTH:
            job = self.queued[0]
            if job.error is not None:
                self.queued.popleft()
                continue
            if job.sent == 0 and job.id in self.cancelled:
                self.queued.popleft()
                self.reply({"id": job.id, "ok": False, "cancelled": True})
                continue
            if self.waiting and job.peer != self.link_for:
                return  # another peer's: once this one's answers are in
            if job.sent == 0:
                try:
                    self._start(job)
                except OSError as exc:
                    self.queued.popleft()
                    self._fail(job, exc.strerror or str(exc), kind="os", code=exc.errno or 0)
                    continue
            try:
                link = self._link(job.peer)
                self.ids += 1
                ranges = [[job.blob, offset, length] for offset, length in job.batches[job.sent]]
                request = {"id": self.ids, "op": "chunks", "args": {"ranges": ranges}}
                link.send(request)
            except (OSError, ProtocolError) as exc:
                # Hand every pending file back to the worker: redialling for each could cost
                # a handshake timeout each.
                self._link_broke(exc)
                for other in [*(other for other, _ in self.waiting), *self.queued]:
                    self._fail(other, f"no data link to the peer: {exc}")
                self.waiting.clear()
                self.queued.clear()
                return
            self.waiting.append((job, self.ids))
            job.sent += 1
            if job.sent == len(job.batches):
                self.queued.popleft()

    def _receive_one(self) -> None:
        job, wanted = self.waiting.popleft()
        try:
            reply = self.link.receive()
            if reply.get("re") != wanted:
                raise ProtocolError("the peer answered out of order")
            if not reply.get("ok"):
                raise RemoteError(str(reply.get("error")))
        except (OSError, ProtocolError) as exc:
            self._link_broke(exc)
            for other, _ in [(job, wanted), *self.waiting]:
                self._fail(other, f"the data link broke: {exc}")
            self.waiting.clear()
            return
        except RemoteError as exc:
            self._fail(job, f"the peer could not send it: {exc}")
            return
        finally:
            # Counted as the worker's traffic: it is the worker's sampler that writes it.
            self.reply({"traffic": DIALLED.totals()})
        job.answered += 1
        if job.error is None:
            try:
                self._write(job, reply.get("result"), job.batches[job.answered - 1])
            except JobFailed as exc:
                self._fail(job, str(exc))
            except OSError as exc:
                self._fail(job, exc.strerror or str(exc), kind="os", code=exc.errno or 0)
        if job.error is None and job.answered == len(job.batches):
            self.finishing.put(job)

    def _start(self, job: Job) -> None:
        job.fd = create_staged(job.tmp, job.mode)
        job.hasher = blake3.blake3()
        job.writer = content_writer(job.fd, job.size, job.hasher)

    def _write(self, job: Job, answer, batch: list) -> None:
        if not isinstance(answer, list) or len(answer) != len(batch):
            raise JobFailed("bad answer to a request for chunks")
        for data, (_, length) in zip(answer, batch, strict=True):
            if not isinstance(data, bytes | memoryview) or len(data) != length:
                raise JobFailed("the peer could not send a range of it")
            job.writer.add(data)
            job.received += length

    def _finish(self, job: Job) -> None:
        try:
            writer, job.writer = job.writer, None  # finished once, even if this fails
            writer.finish()
            if job.hasher.digest() != job.blob:
                raise JobFailed("what the peer sent does not match its hash")
            device = seal_staged(job.fd, job.mode, job.mtime_ns)
        except JobFailed as exc:
            self._fail(job, str(exc), kind="corrupt")
            return
        except OSError as exc:
            self._fail(job, exc.strerror or str(exc), kind="os", code=exc.errno or 0)
            return
        os.close(job.fd)
        job.fd = None
        job.done = True
        self.reply({"id": job.id, "ok": True, "device": device, "bytes": job.received})

    def _fail(self, job: Job, problem: str, kind: str = "fetch", code: int = 0) -> None:
        """Remove the job's file and tell the worker, once; answers still coming are dropped."""
        if job.error is not None:
            return
        job.error = problem
        if job.writer is not None:
            try:
                job.writer.finish()  # gives its buffer back
            except OSError:
                pass
            job.writer = None
        if job.fd is not None:
            os.close(job.fd)
            job.fd = None
            try:
                os.unlink(job.tmp)
            except FileNotFoundError:
                pass
        self.reply({"id": job.id, "ok": False, "kind": kind, "error": problem, "errno": code})

    def _link(self, peer: tuple) -> Link:
        if self.link is not None and self.link_for == peer and not self.link.closed:
            return self.link
        self._link_broke(None)
        address, key, name, timeout, peer_name = peer
        self.link = Link.dial(address, key, load_identity(), name, timeout, peer_name)
        self.link_for = peer
        return self.link

    def _link_broke(self, exc) -> None:
        if self.link is not None:
            self.link.close()
        self.link, self.link_for = None, None


def _job(message: dict) -> Job:
    job = message["job"]
    return Job(
        id=job["id"],
        peer=(job["address"], job["key"], job["name"], job["timeout"], job["peer"]),
        tmp=job["tmp"],
        blob=job["blob"],
        size=job["size"],
        mtime_ns=job["mtime_ns"],
        mode=job["mode"],
        batches=batches_of([tuple(c) for c in job["chunks"]]),
    )


def _read_frames(stream, inbox: queue.Queue) -> None:
    try:
        while (message := read_stream_frame(stream)) is not None:
            inbox.put(message)
    except (OSError, ProtocolError, ValueError):
        pass
    finally:
        inbox.put(None)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker stops it, by closing its input
    # Frames go to the worker on a descriptor of their own: anything printed goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    lock = threading.Lock()

    def reply(message: dict) -> None:
        with lock:
            try:
                replies.write(pack(message))
                replies.flush()
            except OSError:  # the worker is gone: what is left is abandoned
                pass

    inbox: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_frames, args=(os.fdopen(0, "rb"), inbox), daemon=True)
    reader.start()
    Stager(inbox, reply).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
