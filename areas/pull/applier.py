"""Applying a peer's changes to this peer's Real, keeping both versions when they collide.

A change applies when its base is this peer's current version of the path. Otherwise:
- both sides changed the content: the version with the later mtime (then the larger origin
  key) keeps the path on every peer; the other is kept beside it as a conflict copy named
  after its peer and time, so every peer ends with the same two files;
- one side deleted, the other changed: the change wins (nothing is lost);
- both sides reached the same content: nothing to do.
"""

import logging
import os
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import areas.pull.patches as patches
from areas.files import (
    MIN_SIZE,
    AreaPaths,
    ChunkRef,
    CorruptContent,
    DiskChanged,
    Hashed,
    Staged,
    check_disk,
    chunk_hash,
    clean_temporary_files,
    expose,
    make_directories,
    remove_empty_parents,
    single_chunk,
    stage_file,
    staging_directory,
    sync_directories,
    sync_staged,
    temporary_name,
)
from areas.index import (
    FRESH_FIELDS,
    BadData,
    Change,
    Kind,
    RemoteEvent,
    blob_files,
    chunk_list_from_wire,
    chunk_lists,
    entry_row,
    entry_values,
    history,
    insert_entry_rows,
    local_chunks,
    read_ranges,
    rows,
    scan_paths,
    stat_fields,
    store_blobs,
)
from areas.models import Area, Conflict, Entry
from areas.pull.decide import Do, Step, Version, decide
from areas.pull.fetch import ChunkFetcher, ChunkSource, Unavailable, Wanted
from areas.pull.prestage import FilesAhead, Outcome
from areas.stager import STAGING, NotStaged
from peers.wire import ProtocolError, RemoteError

log = logging.getLogger(__name__)
# Missing chunks are asked for in batches of this size, this many batches on their way at
# once, and fetched at most this far ahead of the writes.
FETCH_BATCH_BYTES = 4 * 1024 * 1024
FETCH_DEPTH = 4
FETCH_AHEAD_BYTES = 48 * 1024 * 1024
# Changes are applied, and recorded, a window at a time.
WINDOW_BYTES = 1024 * 1024 * 1024
# Written files wait (complete, checked, not yet visible) until this many files or bytes are
# ready, then are synced to disk together and renamed into place.
STAGE_FILES = 2000
STAGE_BYTES = 256 * 1024 * 1024
# Files are written by a thread of their own while the main thread decides the next changes
# (a second one cost more in lock hand-offs than it saved: measured 7.0 s against 8.8 s for the
# bench tree).
STAGE_THREADS = 1
# New files at least this large, whose every chunk this peer lacks, are fetched and staged by
# the stager, a process of its own (areas.stager.process), where the peer can be dialled directly.
STAGER_FROM = 1024 * 1024
BLOB_BATCH = 1000
# Files up to this size are staged by the thread deciding the changes, not the writer.
INLINE_BYTES = 64 * 1024
ENTRY_FIELDS = [
    "blob_hash",
    "deleted_hash",
    "size",
    "mtime_ns",
    "ctime_ns",
    "inode",
    "mode",
    "origin",
    "updated_at",
]


@dataclass
class ApplyStats:
    files: int = 0
    bytes: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    # The first change that could not be applied (its sequence number at the peer): the
    # next consensus pulls again from there.
    retry_from: int | None = None

    def failed(self, e: RemoteEvent, problem: str) -> None:
        self.errors.append(f"{e.path}: {problem}")
        log.warning("could not apply %s %s: %s", e.kind, e.path, problem)
        self.retry_from = e.seq if self.retry_from is None else min(self.retry_from, e.seq)


@dataclass
class _Pending:
    """A change whose file is staged: recorded once the file is in place."""

    event: RemoteEvent
    path: str
    expect: Entry | None
    kind: str
    base: bytes | None
    identity: dict
    staging: "Future | Outcome | Routed"  # of the Staged file


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


class Applier:
    def __init__(
        self, area: Area, remote, local_key: bytes, stats: ApplyStats, staging: Path | None
    ):
        self.area = area
        self.root = Path(area.path)
        self.paths = AreaPaths(self.root)
        self.remote = remote
        self.local_key = local_key
        self.stats = stats
        self.source = ChunkSource(self._fetch_one, self._elsewhere)
        self.chunks: dict[bytes, list[ChunkRef]] = {}
        self.changes: list[Change] = []
        # Entries as this window sees them; the changed ones are written in bulk by flush().
        self.entries: dict[str, Entry | None] = {}
        self.dirty: dict[str, Entry] = {}
        # Paths that had no entry and now hold a file: their rows, made into entries only if
        # the window needs them again (most never are; model objects cost).
        self.fresh: dict[str, tuple] = {}
        self.conflicts: list[Conflict] = []
        self.applied: set[tuple[bytes, int]] = set()
        # Directories whose entries changed: synced before the window is recorded.
        self.dirs: set[str] = set()
        self.pending: dict[str, _Pending] = {}
        self.pending_events: set[int] = set()  # id() of the events they belong to
        self.pending_bytes = 0
        self.writers = ThreadPoolExecutor(STAGE_THREADS, thread_name_prefix="stage")
        self.staging_dir = staging
        self._fetch_lock = threading.Lock()
        self.ahead: FilesAhead | None = None
        # Files the stager stages for this window: id() of the event -> Future.
        self.routed: dict[int, Future] = {}

    # --- content ----------------------------------------------------------------------------
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
        # Stored once the fetching has started: thousands of chunk rows for a page of large
        # files (0.1-0.2 s measured) that neither the fetching nor the writing needs.
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
        links = getattr(self.remote, "links", None)
        if links is None or not links.usable:
            return None
        return (links.address, links.key, links.name, links.timeout)

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
        others = getattr(self.remote, "others", None)
        for other in others() if others else []:
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

    def close(self) -> None:
        """After the last change: wait for the writers, stop fetching, remove the files
        staged ahead that no change took."""
        try:
            self.expose_pending()
        finally:
            try:
                if self.ahead is not None:
                    self.ahead.stop()
                self._close_fetcher()  # a file still being staged ahead stops there
                if self.ahead is not None:
                    self.ahead.close()
                self._drop_routed()
            finally:
                self.writers.shutdown()

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

    # --- decisions --------------------------------------------------------------------------
    def run(self, e: RemoteEvent) -> None:
        """Apply one change; its identity is recorded once all it wrote is in place."""
        try:
            self.apply(e)
        except (CorruptContent, Unavailable) as exc:
            raise BadData(str(exc)) from None
        except (OSError, DiskChanged) as exc:
            self.stats.failed(e, getattr(exc, "strerror", None) or str(exc))
            return
        if id(e) not in self.pending_events:
            self._applied(e)
        if len(self.pending) >= STAGE_FILES or self.pending_bytes >= STAGE_BYTES:
            self.expose_pending()

    def _applied(self, e: RemoteEvent) -> None:
        if e.origin_seq:
            self.applied.add((e.origin, e.origin_seq))
        self.applied.update(e.also)

    def apply(self, event: RemoteEvent, retry: bool = True) -> None:
        try:
            for step in decide(event, self._version, self.local_key):
                self._carry_out(step, event)
        except DiskChanged:
            if not retry:
                raise
            # The file changed since the last scan: index it now, then decide again.
            paths = [p for p in (event.path, event.old_path) if p]
            self.flush()
            scan_paths(self.area, self.local_key, paths)
            for path in paths:
                self.entries.pop(path, None)
            self.apply(event, retry=False)

    def _version(self, path: str) -> Version | None:
        entry = self._entry(path)
        if entry is None or not entry.exists:
            return None
        return Version(bytes(entry.blob_hash), entry.mode, entry.mtime_ns, bytes(entry.origin))

    def _carry_out(self, step: Step, e: RemoteEvent) -> None:
        path, identity = step.path, {} if step.own else self._identity(e)
        if step.do == Do.SET_STATUS:
            self._set_status(path, self._entry(path), e, identity)
        elif step.do == Do.WRITE:
            if step.conflict:
                self._conflict(path, "", None, e, step.conflict)
            self._write(path, e, self._entry(path), step.kind, step.base, identity)
        elif step.do == Do.DELETE:
            self._remove(path, step.base, e, identity)
        elif step.do == Do.MOVE:
            self._move(e, identity)
        elif step.do == Do.KEEP_MINE:
            self._conflict(path, "", step.kept, e, step.conflict)
        elif step.do == Do.THEIRS_WIN:
            copy = self._move_aside(path, self._entry(path), step.copy)
            self._conflict(path, copy, step.kept, e, step.conflict)
            self._write(path, e, None, Kind.CREATE, None, identity)
        elif step.do == Do.MINE_WIN:
            copy_entry = self._entry(step.copy)
            self._conflict(path, step.copy, step.kept, e, step.conflict)
            # The copy is this peer's making: it carries no identity of the change.
            self._write(step.copy, e, copy_entry, Kind.CREATE, None, {})

    def load(self, events: list[RemoteEvent]) -> None:
        paths = {p for e in events for p in (e.path, e.old_path) if p}
        self.entries.update(dict.fromkeys(paths))
        found = Entry.objects.raw(
            "SELECT * FROM areas_entry WHERE area_id = %s AND path = ANY(%s)",
            [self.area.pk, list(paths)],
        )
        for entry in found:
            self.entries[entry.path] = entry

    def _entry(self, path: str) -> Entry | None:
        if path in self.pending:
            self.expose_pending()  # a staged file there: put it in place before deciding
        if path in self.fresh:
            row = self.fresh.pop(path)
            entry = Entry(area=self.area, **dict(zip(FRESH_FIELDS, row[1:], strict=True)))
            self._touch(entry)
        if path not in self.entries:
            self.entries[path] = Entry.objects.filter(area=self.area, path=path).first()
        return self.entries[path]

    def _touch(self, entry: Entry) -> None:
        self.entries[entry.path] = entry
        self.dirty[entry.path] = entry

    def flush(self) -> None:
        """Write what the window changed: entries, conflicts, history, applied identities."""
        self.expose_pending()
        now = timezone.now()
        new = [e for e in self.dirty.values() if e.pk is None]
        old = [e for e in self.dirty.values() if e.pk is not None]
        for e in self.dirty.values():
            e.updated_at = now
        sync_directories(self.dirs)
        self.dirs.clear()
        with transaction.atomic():
            insert_entry_rows([*self.fresh.values(), *(entry_values(e) for e in new)])
            Entry.objects.bulk_update(old, ENTRY_FIELDS, batch_size=2000)
            Conflict.objects.bulk_create(self.conflicts)
            history.append(self.area, self.changes, self.local_key)
            # The identities of the changes just appended are marked seen by append.
            recorded = {(c.origin, c.origin_seq) for c in self.changes if c.origin}
            history.mark_seen(self.area, sorted(self.applied - recorded))
        for path in [*self.fresh, *(e.path for e in new)]:
            self.entries.pop(path, None)  # inserted without a key: read again if needed
        self.fresh.clear()
        self.dirty.clear()
        self.changes, self.conflicts, self.applied = [], [], set()




    # --- effects ----------------------------------------------------------------------------
    def _remove(self, path: str, base: bytes | None, e: RemoteEvent, identity: dict) -> None:
        entry = self._entry(path)
        full = self.paths.full(path)
        check_disk(full, entry)
        full.unlink()
        self.dirs.add(str(full.parent))
        remove_empty_parents(self.root, full)
        entry.bury()
        entry.origin = e.origin
        self._touch(entry)
        self.changes.append(Change(Kind.DELETE, path, None, base, **identity))
        self.stats.files += 1

    def _move(self, e: RemoteEvent, identity: dict) -> None:
        source, target = self._entry(e.old_path), self._entry(e.path)
        old_full, new_full = self.paths.full(e.old_path), self.paths.full(e.path)
        check_disk(old_full, source)
        check_disk(new_full, target)
        if self.staging_dir is None:
            new_full.parent.mkdir(parents=True, exist_ok=True)
        else:
            make_directories(str(new_full.parent), str(self.staging_dir))
        os.rename(old_full, new_full)
        self.dirs.update((str(new_full.parent), str(old_full.parent)))
        remove_empty_parents(self.root, old_full)
        st = os.lstat(new_full)
        source.bury()
        self._touch(source)
        self._save_entry(e.path, target, e.blob, st, e.origin)
        self.changes.append(
            Change(
                Kind.RENAME,
                e.path,
                e.blob,
                None,
                st.st_size,
                st.st_mtime_ns,
                e.mode,
                old_path=e.old_path,
                **identity,
            )
        )
        self.stats.files += 1

    def _write(
        self, path: str, e: RemoteEvent, entry: Entry | None, kind, base, identity: dict
    ) -> None:
        """Stage the file; it is put in place (and recorded) by expose_pending."""
        if path in self.pending:
            self.expose_pending()
        args = (
            self.paths.full_name(path),
            e.blob,
            self.chunks[e.blob],
            self.source,
            e.mtime_ns,
            e.mode,
            self.staging_dir,
        )
        ahead = self.ahead.take(e) if self.ahead is not None else None
        routed = self.routed.pop(id(e), None)
        if routed is not None:
            staging = Routed(routed, args, self.stats)
        elif ahead is not None:
            staging = ahead.placed_at(args[0])
        elif e.size <= INLINE_BYTES:
            # A small file is written here and now: handing it to the writer thread would
            # cost more (a future, two thread switches) than writing it.
            staging = Outcome.of(stage_file, *args)
        else:
            staging = self.writers.submit(stage_file, *args)
        self.pending[path] = _Pending(e, path, entry, kind, base, identity, staging)
        self.pending_events.add(id(e))
        self.pending_bytes += e.size

    def expose_pending(self) -> None:
        """Sync the staged files to disk together, then rename each into place and record it.

        A target that changed on disk since it was staged is left alone: its change is
        counted as failed, and the next consensus decides again against the new version.
        """
        pending, self.pending, self.pending_bytes = list(self.pending.values()), {}, 0
        self.pending_events.clear()
        staged: list[tuple[_Pending, Staged]] = []
        problem = None
        for p in pending:  # every write finishes (or fails) before anything else happens
            try:
                staged.append((p, p.staging.result()))
            except (CorruptContent, Unavailable) as exc:
                problem = problem or BadData(str(exc))
            except OSError as exc:
                self.stats.failed(p.event, exc.strerror or str(exc))
        try:
            if problem is not None:
                raise problem
            sync_staged([file for _, file in staged])
        except BaseException:
            for _, file in staged:
                file.discard()
            raise
        for i, (p, file) in enumerate(staged):
            try:
                st = expose(file, p.expect)
            except (OSError, DiskChanged) as exc:
                self.stats.failed(p.event, getattr(exc, "strerror", None) or str(exc))
                continue
            except BaseException:
                for _, rest in staged[i + 1 :]:
                    rest.discard()
                raise
            self.dirs.add(os.path.dirname(file.full))
            e = p.event
            self._save_entry(p.path, p.expect, e.blob, st, e.origin)
            self.changes.append(
                Change(
                    p.kind, p.path, e.blob, p.base, st.st_size, st.st_mtime_ns, e.mode, **p.identity
                )
            )
            self.stats.files += 1
            self._applied(e)

    def _set_status(self, path: str, entry: Entry, e: RemoteEvent, identity: dict) -> None:
        """Give the file (its content unchanged) the change's permissions and time."""
        full = self.paths.full(path)
        check_disk(full, entry)
        if entry.mode != e.mode:
            os.chmod(full, e.mode, follow_symlinks=False)
        if entry.mtime_ns != e.mtime_ns:
            os.utime(full, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
        st = os.lstat(full)
        self._save_entry(path, entry, e.blob, st, e.origin)
        self.changes.append(
            Change(
                Kind.EDIT,
                path,
                e.blob,
                e.blob,
                st.st_size,
                st.st_mtime_ns,
                e.mode,
                **identity,
            )
        )
        self.stats.files += 1

    def _identity(self, e: RemoteEvent) -> dict:
        """The applied change keeps its identity; a snapshot's (0) is unknown."""
        if not e.origin_seq:
            return {}
        return {"origin": e.origin, "origin_seq": e.origin_seq}

    def _move_aside(self, path: str, entry: Entry, copy: str) -> str:
        full, copy_full = self.paths.full(path), self.paths.full(copy)
        n = 0
        while copy_full.exists():
            n += 1
            copy_full = copy_full.with_name(f"{copy_full.stem}-{n}{copy_full.suffix}")
        copy = str(PurePosixPath(path).with_name(copy_full.name))
        check_disk(full, entry)
        os.rename(full, copy_full)
        self.dirs.add(str(copy_full.parent))
        st = os.lstat(copy_full)
        blob = bytes(entry.blob_hash)
        self._save_entry(copy, self._entry(copy), blob, st, bytes(entry.origin))
        entry.bury()
        self._touch(entry)
        self.changes.append(
            Change(
                Kind.RENAME, copy, blob, None, st.st_size, st.st_mtime_ns, entry.mode, old_path=path
            )
        )
        return copy

    def _save_entry(self, path, entry: Entry | None, blob: bytes, st, origin: bytes) -> None:
        if entry is None and path in self.entries and self.entries[path] is None:
            self.fresh[path] = entry_row(self.area.pk, path, blob, st, origin)
            return
        entry = entry or self._entry(path) or Entry(area=self.area, path=path)
        for key, value in {**stat_fields(st), "blob_hash": blob, "origin": origin}.items():
            setattr(entry, key, value)
        self._touch(entry)

    def _conflict(self, path, copy, kept, e: RemoteEvent, description: str) -> None:
        conflict = Conflict(
            area=self.area,
            path=path,
            copy_path=copy,
            kept_hash=kept,
            other_hash=e.blob,
            other_origin=e.origin,
            description=description,
        )
        self.conflicts.append(conflict)
        self.stats.conflicts += 1


def _is_bytes(data) -> bool:
    return isinstance(data, bytes | memoryview)


def collapse(events: list[RemoteEvent]) -> tuple[list[RemoteEvent], list[tuple[bytes, int]]]:
    """Fold each chain of changes of one path into one change: (events, folded away).

    A change whose base is the version the previous change of the same path made continues
    it: create X then edit X to Y is a create of Y; create then delete is nothing at all.
    Only the last version's content is then fetched, which also gets past versions the peer
    no longer has. A rename ends the chains of both its paths.
    """
    out: list[RemoteEvent | None] = []
    last: dict[str, int] = {}
    gone: list[tuple[bytes, int]] = []
    for e in events:
        if e.kind == Kind.RENAME:
            last.pop(e.path, None)
            last.pop(e.old_path, None)
            out.append(e)
            continue
        i = last.get(e.path)
        if i is None or out[i] is None or out[i].blob != e.base:
            last[e.path] = len(out)
            out.append(e)
            continue
        first = out[i]
        ids = (*first.also, *_identity_of(first))
        if e.kind == Kind.DELETE and first.base is None:
            out[i] = None  # made and removed again: nothing to do here
            gone.extend((*ids, *e.also, *_identity_of(e)))
            last.pop(e.path)
            continue
        kind = e.kind
        if first.base is None:
            kind = Kind.CREATE
        elif first.kind == Kind.DELETE and e.kind == Kind.CREATE:
            kind = Kind.OVERWRITE  # deleted, then made again: replaces the first version
        out[i] = replace(e, seq=first.seq, kind=kind, base=first.base, also=(*ids, *e.also))
    return [e for e in out if e is not None], gone


def _identity_of(e: RemoteEvent) -> tuple[tuple[bytes, int], ...]:
    return ((e.origin, e.origin_seq),) if e.origin_seq else ()


def prepare_area(area: Area) -> Path | None:
    """Before a peer's changes are applied (once per pull): remove what an interrupted run
    left, and choose where files are staged (content.staging_directory).

    Files are staged beside their place only when there is no staging directory: the area is
    searched for what such a run left at every pull then, else at the first pull of this
    process (a run of an earlier one may have had none)."""
    root = Path(area.path)
    staging = staging_directory(settings.REALIZE_HOME, area.pk, root)
    if staging is None or _searched.get(area.pk) != str(root):
        clean_temporary_files(root)
        _searched[area.pk] = str(root)
    return staging


# Areas searched for leftover temporary files by this process (area id -> its root then).
_searched: dict[int, str] = {}


def plan(area: Area, events: list[RemoteEvent], local_key: bytes) -> list[list[RemoteEvent]]:
    """A page of a peer's events as windows to apply: those not seen here yet, each chain of
    changes of a path folded into one."""
    ids = [(e.origin, e.origin_seq) for e in events if e.origin_seq]
    already = history.seen(area, ids, local_key)
    events, gone = collapse([e for e in events if (e.origin, e.origin_seq) not in already])
    history.mark_seen(area, gone)
    windows, start = [], 0
    while start < len(events):
        window, size = [], 0
        for e in events[start:]:
            if window and size + e.size > WINDOW_BYTES:
                break
            window.append(e)
            size += e.size
        start += len(window)
        windows.append(window)
    return windows


def apply_window(applier: Applier, window: list[RemoteEvent], prepared: bool = False) -> None:
    """Apply a window of events, in order (the caller holds the area's index lock and has
    called prepare_area); `prepared`: the applier's prepare(window) is done already."""
    try:
        if not prepared:
            applier.prepare(window)
        applier.load(window)
        for e in window:
            applier.run(e)
    finally:
        # What reached the disk is recorded, even when a later event stops the window.
        try:
            applier.close()
        finally:
            applier.flush()
