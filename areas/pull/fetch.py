"""Fetching the chunks a window lacks, ahead of the writes that need them.

Chunks are asked for in the order the files will be written, in batches, several on their
way at once, by a thread of their own. The peer sends the next batches while this peer
writes the last. What is fetched but not yet written is bounded, so memory stays bounded.

Neighbouring chunks of one blob are asked for as one range: the peer reads it in one go.
The chunks of a range it could not give are asked for again by their hashes.

Every chunk is checked against its hash before anything it went into is used. A writer
that hashes the whole file as it writes takes pieces unchecked: hashing each chunk alone
would let go of the GIL and wait to take it back, thousands of times a pull.
"""

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import NamedTuple

from areas.files import ChunkRef, CorruptContent, chunk_hash
from areas.index import read_local_chunk
from areas.pull.patches import Signature, patch, signature

MAX_HASHES_PER_BATCH = 4000


class Wanted(NamedTuple):
    """A chunk to fetch; `blob` (if known): a blob of the peer holding it, at `offset`;
    `replaces` (if any): the old bytes it replaces, which this peer has ((blob, offset,
    length): see areas.pull.patches)."""

    hash: bytes
    length: int
    blob: bytes | None = None
    offset: int = 0
    replaces: tuple[bytes, int, int] | None = None


def spans(batch: list[Wanted]) -> list[tuple[bytes, int, int, list[Wanted]]]:
    """The batch as ranges of the peer's blobs: (blob, offset, length, the chunks in it),
    the chunks of one range replacing the same old bytes (or none)."""
    out: list[tuple[bytes, int, int, list[Wanted]]] = []
    for item in batch:
        if out:
            blob, offset, length, items = out[-1]
            if (
                item.blob == blob
                and item.offset == offset + length
                and item.replaces == items[0].replaces
            ):
                out[-1] = (blob, offset, length + item.length, items)
                items.append(item)
                continue
        out.append((item.blob, item.offset, item.length, [item]))
    return out


def _corrupt() -> CorruptContent:
    return CorruptContent("a peer sent a chunk whose hash does not match: discarded")


class Unavailable(Exception):
    """The peer could not send a chunk (or fetching chunks failed altogether)."""


def batches(plan: list[Wanted], batch_bytes: int) -> Iterator[list[Wanted]]:
    batch: list[Wanted] = []
    size = 0
    for item in plan:
        batch.append(item)
        size += item.length
        if size >= batch_bytes or len(batch) >= MAX_HASHES_PER_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class ChunkFetcher:
    """Chunks of a plan, fetched ahead by a thread; `take` hands each one out as it is needed.

    `plan` lists each missing chunk once (Wanted) in the order of first use; `uses` says how
    many times each will be taken, so a chunk needed twice is kept until its last use.
    `fetch_many(requests)` yields each request's answer (a list of chunk contents, or of
    range contents for a request of ranges), in order. With `read_old` (which reads the old
    bytes a Wanted `replaces`, or gives None), ranges replacing old bytes are asked for as
    patches against them (areas.pull.patches).
    """

    def __init__(
        self,
        plan: list[Wanted],
        uses: Counter,
        fetch_many: Callable[[Iterator[dict]], Iterator[list]],
        batch_bytes: int,
        ahead_bytes: int,
        after: "ChunkFetcher | None" = None,
        read_old: Callable[[tuple[bytes, int, int]], memoryview | None] | None = None,
    ):
        self.plan = [Wanted(*item) for item in plan]
        self.read_old = read_old
        self._signed: tuple | None = None  # the last old bytes signed: (replaces, old, sig)
        self.after = after
        self.uses = uses
        self.fetch_many = fetch_many
        self.batch_bytes = batch_bytes
        self.ahead_bytes = ahead_bytes
        self.received = 0  # content bytes fetched
        self._ready: dict[bytes, bytes] = {}
        self._failed: dict[bytes, Exception] = {}
        self._unchecked: set[bytes] = set()  # ready, not yet checked against their hash
        self._held = 0
        self._waiting = 0
        self._done = False
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._retry: list[Wanted] = []  # chunks of ranges not given: asked for by hash

    def start(self) -> "ChunkFetcher":
        if self.plan:
            self._thread = threading.Thread(target=self._run, name="chunk-fetcher", daemon=True)
            self._thread.start()
        else:
            self._done = True
            self.after = None  # nothing to wait for it with
        return self

    def _run(self) -> None:
        try:
            if self.after is not None:
                before, self.after = self.after, None  # not kept: pages chain their feeds
                if not self._wait_for(before):
                    return
            if self._pipeline(self._requests(batches(self.plan, self.batch_bytes))):
                while self._retry:
                    if not self._pipeline(self._retries()):
                        break
        except BaseException as exc:  # noqa: BLE001 - handed to the writer, which raises it
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _wait_for(self, before: "ChunkFetcher") -> bool:
        """Until the fetcher before this one has fetched all it will: windows are fetched in
        the order they are applied, so the one the writes wait for now never shares the
        peer's bandwidth with those ahead of it. False if this one was closed meanwhile."""
        while not before.wait_finished(0.1):
            with self._cond:
                if self._closed:
                    return False
        return True

    def wait_finished(self, timeout: float) -> bool:
        """Wait (at most timeout) until this fetcher has fetched all it will; whether it has."""
        with self._cond:
            if not (self._done or self._closed):
                self._cond.wait(timeout)
            return self._done or self._closed

    def _pipeline(self, requests: Iterator[tuple[dict, Callable]]) -> bool:
        """Send requests ((args, what takes its answer) pairs), a few on their way at once;
        False if the fetcher was closed meanwhile."""
        sent: deque[Callable] = deque()

        def remember() -> Iterator[dict]:
            for args, accept in requests:
                sent.append(accept)
                yield args

        answers = self.fetch_many(remember())
        try:
            for answer in answers:
                sent.popleft()(answer)
                if not self._wait_for_room():
                    return False
        finally:
            answers.close()
        return True

    def _requests(self, wanted: Iterator[list[Wanted]]) -> Iterator[tuple[dict, Callable]]:
        for batch in wanted:
            yield from self._retries()  # the sooner, the less the writer waits for them
            if all(item.blob is not None for item in batch):
                ranges = spans(batch)
                signed = [self._old(items[0].replaces) for _, _, _, items in ranges]
                args = {
                    "ranges": [
                        [blob, offset, length] + ([old[1].keys] if old else [])
                        for (blob, offset, length, _), old in zip(ranges, signed, strict=True)
                    ]
                }
                yield args, partial(self._accept_ranges, ranges, signed)
            else:
                yield self._by_hash(batch)

    def _retries(self) -> Iterator[tuple[dict, Callable]]:
        retry, self._retry = self._retry, []
        for batch in batches(retry, self.batch_bytes):
            yield self._by_hash(batch)

    def _by_hash(self, batch: list[Wanted]) -> tuple[dict, Callable]:
        hashes = [item.hash for item in batch]
        return {"hashes": hashes}, partial(self._accept, hashes)

    def _old(self, replaces: tuple | None) -> tuple[memoryview, Signature] | None:
        """The old bytes a range replaces and their signature, if this peer has them."""
        if replaces is None or self.read_old is None:
            return None
        if self._signed is None or self._signed[0] != replaces:
            old = self.read_old(replaces)
            self._signed = (replaces, old, signature(old) if old is not None else None)
        _, old, sig = self._signed
        return (old, sig) if old is not None else None

    def _accept_ranges(self, ranges: list, signed: list, answer) -> None:
        if not isinstance(answer, list) or len(answer) != len(ranges):
            raise Unavailable("bad answer to a request for chunks")
        hashes, parts, later, patched = [], [], set(), set()
        for (_, _, length, items), old, data in zip(ranges, signed, answer, strict=True):
            if old is not None and data is not None:
                # Counted as what crossed the wire; what it puts together is checked below.
                with self._cond:
                    self.received += len(data)
                data = patch(old[0], old[1], data, length)
                data = memoryview(data) if data is not None else None
            if not isinstance(data, bytes | memoryview) or len(data) != length:
                self._retry.extend(items)  # not in a file as indexed there: ask by hash
                continue
            position = 0
            for item in items:
                hashes.append(item.hash)
                parts.append(data[position : position + item.length])
                if old is not None:
                    patched.add(item.hash)
                position += item.length
                if item.blob != item.hash:  # a piece of a blob of several chunks
                    later.add(item.hash)
        self._accept(hashes, parts, later, patched)

    def _accept(
        self,
        hashes: list[bytes],
        answer,
        later: set[bytes] = frozenset(),
        patched: set[bytes] = frozenset(),
    ) -> None:
        """Take a batch's answer; the chunks in `later` are checked when taken, if asked;
        those `patched` were counted as received already."""
        if not isinstance(answer, list) or len(answer) != len(hashes):
            raise Unavailable("bad answer to a request for chunks")
        good, failed = {}, {}
        for h, data in zip(hashes, answer, strict=True):
            if not isinstance(data, bytes | memoryview):
                failed[h] = Unavailable(f"the peer could not send chunk {h.hex()[:16]}")
            elif h not in later and chunk_hash(data) != h:
                failed[h] = _corrupt()
            else:
                good[h] = data
        with self._cond:
            # A chunk the peer did not send right is the writer's to get elsewhere.
            self._failed.update(failed)
            self.received += sum(len(d) for h, d in good.items() if h not in patched)
            for h, data in good.items():
                if self.uses[h] > 0 and h not in self._ready:
                    # A view of the answer keeps all of it in memory while it is held: one
                    # kept for a later use is copied out.
                    self._ready[h] = bytes(data) if self.uses[h] > 1 else data
                    self._held += len(data)
                    if h in later:
                        self._unchecked.add(h)
            self._cond.notify_all()

    def _wait_for_room(self) -> bool:
        with self._cond:
            while self._held > self.ahead_bytes and not self._waiting and not self._closed:
                self._cond.wait()
            return not self._closed

    def take(self, h: bytes, checked: bool = True) -> bytes | memoryview:
        """The chunk's content, waiting for it if it is still on its way; checked against
        its hash unless the caller checks what it writes (`checked=False`)."""
        data, unchecked = self._take(h)
        if checked and unchecked:
            if chunk_hash(data) != h:
                raise _corrupt()
            with self._cond:
                self._unchecked.discard(h)  # kept for a later use: checked now
        return data

    def _take(self, h: bytes) -> tuple[bytes | memoryview, bool]:
        """The chunk's content, and whether it is still unchecked."""
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
            unchecked = h in self._unchecked
            self._forget(h, data)
            return data, unchecked

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
            self._unchecked.discard(h)
            self._held -= len(data)
            self._cond.notify_all()

    def wanted(self, h: bytes) -> bool:
        return self.uses[h] > 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._unchecked.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()


class ChunkSource:
    """Chunks for the files being written.

    A chunk this peer has is read from its Real and checked; a missing one is taken from the
    fetcher that fetches them ahead (or, for a local one that turned out changed, fetched alone).
    One the peer cannot send, or sends wrong, is asked of the other peers (`elsewhere`).
    """

    def __init__(
        self,
        fetch_one: Callable[[bytes], bytes],
        elsewhere: Callable[[bytes, Exception], bytes],
    ):
        self.fetch_one = fetch_one
        self.elsewhere = elsewhere
        self.local: dict[bytes, tuple[str, int, int]] = {}
        self.fetcher: ChunkFetcher | None = None

    def get(self, ref: ChunkRef, checked: bool = True) -> bytes | memoryview:
        """The chunk's content; checked against its hash, unless `checked` is False and
        the caller checks the hash of the whole it writes (the fetcher may then skip it)."""
        if ref.hash in self.local:
            data = read_local_chunk(self.local[ref.hash], ref.hash)
            if data is not None:
                return data
            # The file it was to be read from changed or moved since: fetch it instead.
            self.local.pop(ref.hash, None)
        try:
            if self.fetcher is not None and self.fetcher.wanted(ref.hash):
                return self.fetcher.take(ref.hash, checked)
            return self.fetch_one(ref.hash)
        except (Unavailable, CorruptContent) as exc:
            return self.elsewhere(ref.hash, exc)

    def get_again(self, ref: ChunkRef) -> bytes | memoryview:
        """The chunk once more, checked, without the fetcher (which gave it already): from
        this peer's files, else asked of the peer alone, else of the other peers."""
        if ref.hash in self.local:
            data = read_local_chunk(self.local[ref.hash], ref.hash)
            if data is not None:
                return data
        try:
            return self.fetch_one(ref.hash)
        except (Unavailable, CorruptContent) as exc:
            return self.elsewhere(ref.hash, exc)

    def abandon(self, chunks: list[ChunkRef]) -> None:
        """A write gave up before these chunks: the fetcher need not keep them for it."""
        if self.fetcher is not None:
            self.fetcher.skip([c.hash for c in chunks if c.hash not in self.local])
