"""Where a window's new files come from, and where they are staged before they are decided.

Chunks this peer has are read from its Real; the others are fetched ahead of the writes, in
the order the writes want them. Large new files go to the stager (areas.stager), a process
of the worker's own. The rest are staged by a writer thread, or inline when small. Which
change a staged file serves is decided later (areas.pull.rules).
"""

import logging
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import areas.pull.patches as patches
from areas.files import (
    MIN_SIZE,
    ChunkRef,
    CorruptContent,
    Hashed,
    Staged,
    chunk_hash,
    single_chunk,
    stage_file,
    temporary_name,
)
from areas.files.paths import AreaPaths
from areas.index import (
    BadData,
    RemoteEvent,
    blob_files,
    chunk_list_from_wire,
    chunk_lists,
    local_chunks,
    read_ranges,
    rows,
    store_blobs,
)
from areas.index.history import Kind
from areas.models import Area
from areas.pull.fetch import ChunkFetcher, ChunkSource, Unavailable, Wanted
from areas.pull.prestage import FilesAhead, Outcome
from areas.pull.stats import ApplyStats
from areas.stager import STAGING, NotStaged
from peers.client import Remote
from peers.wire import ProtocolError, RemoteError

log = logging.getLogger(__name__)
# Missing chunks are asked for in batches of this size, this many batches on their way at
# once, and fetched at most this far ahead of the writes.
FETCH_BATCH_BYTES = 4 * 1024 * 1024
FETCH_DEPTH = 4
FETCH_AHEAD_BYTES = 48 * 1024 * 1024
# Files are written by one thread of their own while the main thread decides the next
# changes: a second one cost more in lock hand-offs than it saved.
STAGE_THREADS = 1
# New files at least this large, whose every chunk this peer lacks, are fetched and staged by
# the stager, where the peer can be dialled directly.
STAGER_FROM = 1024 * 1024
BLOB_BATCH = 1000
# Files up to this size are staged by the thread deciding the changes: handing one to the
# writer would cost more (a future, two thread switches) than writing it.
INLINE_BYTES = 64 * 1024


class Routed:
    """A file the stager stages: its Staged file, placed at args' path; if the stager could
    not stage it, staged here by the usual means (stage_file with args)."""

    def __init__(self, future: Future, args: tuple, stats: ApplyStats):
        self.future, self.args, self.stats = future, args, stats
        self._staged: Staged | None = None

    def result(self) -> Staged:
        if self._staged is None:
            try:
                staged, received = self.future.result()
            except NotStaged as exc:
                log.info("staging %s here: the stager did not (%s)", self.args[0], exc)
                self._staged = stage_file(*self.args)
            else:
                self.stats.bytes += received
                self._staged = replace(staged, full=self.args[0])
        return self._staged


class WindowContent:
    """The content of one window of changes: chunk lists, where each chunk comes from, and
    each new file staged (inline, by the writer thread, or by the stager)."""

    def __init__(
        self,
        area: Area,
        paths: AreaPaths,
        remote: Remote,
        stats: ApplyStats,
        staging: Path | None,
    ):
        self.area = area
        self.paths = paths
        self.remote = remote
        self.stats = stats
        self.staging_dir = staging
        self.source = ChunkSource(self._fetch_one, self._elsewhere)
        self.chunks: dict[bytes, list[ChunkRef]] = {}
        self.writers = ThreadPoolExecutor(STAGE_THREADS, thread_name_prefix="stage")
        self._fetch_lock = threading.Lock()
        self.ahead: FilesAhead | None = None
        # Files the stager stages for this window: id() of the event -> Future.
        self.routed: dict[int, Future] = {}

    def stage(self, e: RemoteEvent, full: str) -> "Future | Outcome | Routed":
        """The change's file staged for `full`: by the stager, ahead, inline or by the writer."""
        chunks = self.chunks[e.blob]
        args = (full, e.blob, chunks, self.source, e.mtime_ns, e.mode, self.staging_dir)
        ahead = self.ahead.take(e) if self.ahead is not None else None
        routed = self.routed.pop(id(e), None)
        if routed is not None:
            return Routed(routed, args, self.stats)
        if ahead is not None:
            return ahead.placed_at(full)
        if e.size <= INLINE_BYTES:
            return Outcome.of(stage_file, *args)
        return self.writers.submit(stage_file, *args)

    def close(self) -> None:
        """Stop fetching; remove the files staged ahead that no change took."""
        try:
            if self.ahead is not None:
                self.ahead.stop()
            self._close_fetcher()  # a file still being staged ahead stops there
            if self.ahead is not None:
                self.ahead.close()
            self._drop_routed()
        finally:
            self.writers.shutdown()

    def prepare(self, events: list[RemoteEvent], after: ChunkFetcher | None = None) -> None:
        """Get the chunk lists of the blobs these events need; start fetching what we lack
        (once `after`, the fetching for the changes before these, has fetched all it will)."""
        wanted = {e.blob for e in events if e.blob is not None}
        sizes = {e.blob: e.size for e in events if e.blob is not None}
        # A blob no larger than the smallest chunk is one chunk, named like the blob itself
        # (and not stored: blobs.store_blobs).
        self.chunks = {h: single_chunk(h, sizes[h]) for h in wanted if sizes[h] <= MIN_SIZE}
        self.chunks.update(chunk_lists([h for h in wanted if h not in self.chunks]))
        unknown = [h for h in wanted if h not in self.chunks]
        # An edited blob's list comes written against the version it edits, which we have.
        base_of = {e.blob: e.base for e in events if e.blob and e.base and e.base != e.blob}
        base_lists = chunk_lists([base_of[h] for h in unknown if h in base_of])
        new = []
        for i in range(0, len(unknown), BLOB_BATCH):
            batch = unknown[i : i + BLOB_BATCH]
            bases = {h: base_of[h] for h in batch if base_of.get(h) in base_lists}
            answer = self.remote.call("blobs", hashes=batch, bases=bases)
            if not isinstance(answer, dict):
                raise BadData("bad answer to blobs")
            for h in batch:
                if h not in answer:
                    raise BadData(f"peer does not know blob {h.hex()[:16]}")
                base = base_lists.get(bases[h]) if h in bases else None
                refs = chunk_list_from_wire(answer[h], sizes[h], base)
                self.chunks[h] = refs
                new.append(Hashed(h, sizes[h], refs))
        needed = {c.hash for h in wanted for c in self.chunks[h]}
        self.source.local = local_chunks(needed)
        ahead = self._to_stage_ahead(events) if self.staging_dir is not None else []
        routed = self._routed(events, ahead, base_of, base_lists)
        self.source.fetcher = self._fetcher(events, after, base_of, base_lists, routed).start()
        if self.staging_dir is not None:
            ahead = [e for e in ahead if id(e) not in routed]
            self.ahead = FilesAhead(self._stage_ahead, ahead, self.writers)
        self._submit(routed)
        # Stored once the fetching has started: neither the fetching nor the writing needs
        # these chunk rows, thousands for a page of large files.
        store_blobs(new)

    def _to_stage_ahead(self, events: list[RemoteEvent]) -> list[RemoteEvent]:
        """The changes whose files are worth writing before they are decided: those bringing
        content this peer does not have at that path now (a rename moves a file it has)."""
        wanted = [e for e in events if e.blob and e.kind != Kind.RENAME and e.base != e.blob]
        if not wanted:
            return []
        here = dict(
            rows(
                "SELECT path, blob_hash FROM areas_entry WHERE area_id = %s AND path = ANY(%b)",
                [self.area.pk, [e.path for e in wanted]],
            )
        )
        return [e for e in wanted if here.get(e.path) != e.blob]

    def _stager_peer(self) -> tuple | None:
        """The peer as the stager dials it, if it can be dialled directly."""
        links = self.remote.links
        if links is None or not links.usable:
            return None
        return (links.address, links.key, links.name, links.timeout, links.peer)

    def _routed(
        self,
        events: list[RemoteEvent],
        ahead: list[RemoteEvent],
        base_of: dict[bytes, bytes],
        base_lists: dict[bytes, list[ChunkRef]],
    ) -> dict[int, RemoteEvent]:
        """The files of this window for the stager: large new content, staged ahead, none of
        it here, no chunk of it used by another file of the window (those are fetched once,
        by the fetcher), and not an edit travelling as patches."""
        if self._stager_peer() is None:
            return {}
        candidates = [
            e
            for e in ahead
            if e.size >= STAGER_FROM and base_lists.get(base_of.get(e.blob)) is None
        ]
        if not candidates:
            return {}
        uses = Counter(c.hash for e in events if e.blob for c in self.chunks[e.blob])
        routed: dict[int, RemoteEvent] = {}
        blobs: set[bytes] = set()
        for e in candidates:
            chunks = self.chunks[e.blob]
            if e.blob in blobs or any(
                uses[c.hash] > 1 or c.hash in self.source.local for c in chunks
            ):
                continue
            blobs.add(e.blob)
            routed[id(e)] = e
        return routed

    def _submit(self, routed: dict[int, RemoteEvent]) -> None:
        peer = self._stager_peer()
        for key, e in routed.items():
            self.routed[key] = STAGING.submit(
                peer,
                temporary_name(self.staging_dir),
                self.paths.full_name(e.path),
                e.blob,
                e.size,
                self.chunks[e.blob],
                e.mtime_ns,
                e.mode,
            )

    def _stage_ahead(self, e: RemoteEvent) -> Staged:
        full = self.paths.full_name(e.path)
        chunks = self.chunks[e.blob]
        return stage_file(full, e.blob, chunks, self.source, e.mtime_ns, e.mode, self.staging_dir)

    def _fetcher(
        self,
        events: list[RemoteEvent],
        after: ChunkFetcher | None,
        base_of: dict[bytes, bytes],
        base_lists: dict[bytes, list[ChunkRef]],
        routed: dict[int, RemoteEvent],
    ) -> ChunkFetcher:
        """The chunks this window lacks, in the order the writes will want them; those of an
        edit that replace old bytes this peer has fetched as patches against them."""
        plan: list[Wanted] = []
        uses: Counter = Counter()
        for e in events:
            if e.blob is None or id(e) in routed:
                continue
            chunks, old = self.chunks[e.blob], base_lists.get(base_of.get(e.blob))
            replacing = patches.replaced(chunks, old) if old and len(chunks) > 1 else {}
            for i, c in enumerate(chunks):
                if c.hash in self.source.local:
                    continue
                if not uses[c.hash]:
                    near = replacing.get(i)
                    near = (e.base, *near) if near else None
                    plan.append(Wanted(c.hash, c.length, e.blob, c.offset, near))
                uses[c.hash] += 1
        old_files = blob_files({w.replaces[0] for w in plan if w.replaces})

        def read_old(replaces: tuple[bytes, int, int]) -> memoryview | None:
            return read_ranges([replaces], old_files)[0]

        def fetch_many(arg_list):
            return self.remote.call_many("chunks", arg_list, FETCH_DEPTH)

        return ChunkFetcher(
            plan, uses, fetch_many, FETCH_BATCH_BYTES, FETCH_AHEAD_BYTES, after, read_old
        )

    def _fetch_one(self, h: bytes) -> bytes:
        with self._fetch_lock:  # from the writers' threads; the client serves one at a time
            answer = self.remote.call("chunks", hashes=[h])
        if not isinstance(answer, list) or len(answer) != 1 or not _is_bytes(answer[0]):
            raise Unavailable(f"the peer could not send chunk {h.hex()[:16]}")
        if chunk_hash(answer[0]) != h:
            raise CorruptContent("a peer sent a chunk whose hash does not match: discarded")
        with self._fetch_lock:
            self.stats.bytes += len(answer[0])
        return answer[0]

    def _elsewhere(self, h: bytes, problem: Exception) -> bytes:
        """A chunk the peer could not send right, from any other connected peer that has it;
        if none has, the peer's problem stands."""
        for other in self.remote.others():
            try:
                answer = other.call("chunks", hashes=[h])
            except (RemoteError, ConnectionError, OSError, ProtocolError) as exc:
                log.info("asking %s for chunk %s: %s", other.name, h.hex()[:16], exc)
                continue
            finally:
                other.close()
            if isinstance(answer, list) and len(answer) == 1 and _is_bytes(answer[0]):
                if chunk_hash(answer[0]) == h:
                    log.info("chunk %s came from %s instead", h.hex()[:16], other.name)
                    with self._fetch_lock:
                        self.stats.bytes += len(answer[0])
                    return answer[0]
        raise problem

    def _drop_routed(self) -> None:
        """The stager's files no change took: not started, or removed once staged."""
        left, self.routed = list(self.routed.values()), {}
        for future in left:
            STAGING.cancel(future)
        for future in left:
            try:
                staged, _ = future.result()
            except NotStaged:
                continue
            staged.discard()

    def _close_fetcher(self) -> None:
        if self.source.fetcher is not None:
            self.source.fetcher.close()
            self.stats.bytes += self.source.fetcher.received
            self.source.fetcher = None


def _is_bytes(data) -> bool:
    return isinstance(data, bytes | memoryview)
