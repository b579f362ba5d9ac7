"""Fetching the chunks a window of changes lacks, ahead of the writes that need them.

The chunks are asked for in the order the files will be written, in batches, several
batches on their way at once, by a thread of their own: the peer reads and sends the next
batches while this peer checks and writes the last ones. What is fetched but not yet written
is bounded (`ahead_bytes`), unless the writer waits for a chunk beyond that bound, so memory
stays bounded whatever the size of the files.
"""

import threading
from collections import Counter
from collections.abc import Callable, Iterator

from .chunking import chunk_hash

MAX_HASHES_PER_BATCH = 4000


class CorruptContent(ValueError):
    """Content whose hash is not the one it should have."""


class Unavailable(LookupError):
    """The peer could not send a chunk (or fetching chunks failed altogether)."""


def batches(plan: list[tuple[bytes, int]], batch_bytes: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for h, length in plan:
        batch.append(h)
        size += length
        if size >= batch_bytes or len(batch) >= MAX_HASHES_PER_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class ChunkFeed:
    """Chunks of a plan, fetched ahead by a thread; `take` hands each one out as it is needed.

    `plan` lists each missing chunk once (hash, length) in the order of first use; `uses`
    says how many times each will be taken, so a chunk needed twice is kept until its last use.
    `fetch_many(batches)` yields each batch's answer (a list of chunk contents), in order.
    """

    def __init__(
        self,
        plan: list[tuple[bytes, int]],
        uses: Counter,
        fetch_many: Callable[[Iterator[dict]], Iterator[list]],
        batch_bytes: int,
        ahead_bytes: int,
    ):
        self.plan = plan
        self.uses = uses
        self.fetch_many = fetch_many
        self.batch_bytes = batch_bytes
        self.ahead_bytes = ahead_bytes
        self.received = 0  # content bytes fetched
        self._ready: dict[bytes, bytes] = {}
        self._failed: dict[bytes, Exception] = {}
        self._held = 0
        self._waiting = 0
        self._done = False
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> "ChunkFeed":
        if self.plan:
            self._thread = threading.Thread(target=self._run, name="chunk-feed", daemon=True)
            self._thread.start()
        else:
            self._done = True
        return self

    def _run(self) -> None:
        answers = None
        try:
            wanted = batches(self.plan, self.batch_bytes)
            sent: list[list[bytes]] = []

            def remember() -> Iterator[list[bytes]]:
                for batch in wanted:
                    sent.append(batch)
                    yield batch

            answers = self.fetch_many({"hashes": b} for b in remember())
            for answer in answers:
                hashes = sent.pop(0)
                self._accept(hashes, answer)
                if not self._wait_for_room():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the writer, which raises it
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            if answers is not None:
                answers.close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _accept(self, hashes: list[bytes], answer) -> None:
        if not isinstance(answer, list) or len(answer) != len(hashes):
            raise Unavailable("bad answer to a request for chunks")
        checked, failed = {}, {}
        for h, data in zip(hashes, answer, strict=True):
            if not isinstance(data, bytes | memoryview):
                failed[h] = Unavailable(f"the peer could not send chunk {h.hex()[:16]}")
            elif chunk_hash(data) != h:
                failed[h] = CorruptContent(
                    "a peer sent a chunk whose hash does not match: discarded"
                )
            else:
                checked[h] = data
        with self._cond:
            # A chunk the peer did not send right is the writer's to get elsewhere.
            self._failed.update(failed)
            self.received += sum(len(d) for d in checked.values())
            for h, data in checked.items():
                if self.uses[h] > 0 and h not in self._ready:
                    # A view of the answer keeps all of it in memory while it is held: one
                    # kept for a later use is copied out.
                    self._ready[h] = bytes(data) if self.uses[h] > 1 else data
                    self._held += len(data)
            self._cond.notify_all()

    def _wait_for_room(self) -> bool:
        with self._cond:
            while self._held > self.ahead_bytes and not self._waiting and not self._closed:
                self._cond.wait()
            return not self._closed

    def take(self, h: bytes) -> bytes | memoryview:
        """The chunk's content (checked), waiting for it if it is still on its way."""
        with self._cond:
            while h not in self._ready:
                if h in self._failed:
                    self.uses[h] -= 1
                    raise self._failed[h]
                if self._error is not None:
                    raise Unavailable(f"fetching chunks failed: {self._error}")
                if self._done or self._closed:
                    raise Unavailable(f"chunk {h.hex()[:16]} was not fetched")
                self._waiting += 1
                self._cond.notify_all()
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
            data = self._ready[h]
            self._forget(h, data)
            return data

    def skip(self, hashes: list[bytes]) -> None:
        """These uses will not happen (a write gave up): do not keep their chunks for them."""
        with self._cond:
            for h in hashes:
                data = self._ready.get(h)
                if data is not None:
                    self._forget(h, data)
                elif self.uses[h] > 0:
                    self.uses[h] -= 1

    def _forget(self, h: bytes, data: bytes) -> None:
        self.uses[h] -= 1
        if self.uses[h] <= 0:
            del self._ready[h]
            self._held -= len(data)
            self._cond.notify_all()

    def wanted(self, h: bytes) -> bool:
        return self.uses[h] > 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
