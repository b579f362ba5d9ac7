"""Applying a peer's changes here: each change decided (areas.pull.rules), then carried
out on disk and recorded in the index and history.

A window's files are staged first (areas.pull.sourcing). They become visible in batches:
synced to disk together, then each renamed into place only if the path still holds the
version the index knows. What reached the disk is recorded, even when a later change fails.
"""

import errno
import logging
import os
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from areas.files import (
    AreaPaths,
    CorruptContent,
    DiskChanged,
    Staged,
    check_disk,
    clean_temporary_files,
    expose,
    make_directories,
    remove_empty_parents,
    staging_directory,
    sync_directories,
    sync_staged,
)
from areas.index import (
    FRESH_FIELDS,
    BadData,
    Change,
    Kind,
    RemoteEvent,
    entry_row,
    entry_values,
    history,
    insert_entry_rows,
    scan_paths,
    stat_fields,
)
from areas.models import Area, Conflict, Entry
from areas.pull.fetch import ChunkFetcher, Unavailable
from areas.pull.prestage import Outcome
from areas.pull.rules import Do, Step, Version, decide
from areas.pull.sourcing import Routed, WindowContent
from areas.pull.stats import ApplyStats

log = logging.getLogger(__name__)
# Changes are applied, and recorded, a window at a time.
WINDOW_BYTES = 1024 * 1024 * 1024
# Written files wait (complete, checked, not yet visible) until this many files or bytes are
# ready, then are synced to disk together and renamed into place.
STAGE_FILES = 2000
STAGE_BYTES = 256 * 1024 * 1024
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
class _Pending:
    """A change whose file is staged: recorded once the file is in place."""

    event: RemoteEvent
    path: str
    expect: Entry | None
    kind: str
    base: bytes | None
    identity: dict
    staging: "Future | Outcome | Routed"  # of the Staged file




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
        self.staging_dir = staging
        self.content = WindowContent(area, self.paths, remote, stats, staging)
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

    def prepare(self, events: list[RemoteEvent], after: ChunkFetcher | None = None) -> None:
        """Get the chunk lists these changes need and start fetching what this peer lacks
        (see WindowContent.prepare)."""
        self.content.prepare(events, after)









    def close(self) -> None:
        """After the last change: wait for the writers, stop fetching, remove the files
        staged ahead that no change took."""
        try:
            self.expose_pending()
        finally:
            self.content.close()



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
        if entry is None:
            return None
        change = (bytes(entry.change_origin), entry.change_seq)
        base = bytes(entry.base_hash) if entry.base_hash is not None else None
        if not entry.exists:
            if entry.deleted_hash is None:
                return None
            blob = bytes(entry.deleted_hash)
            return Version(blob, gone=True, moved_to=entry.moved_to, base=base, change=change)
        blob, origin = bytes(entry.blob_hash), bytes(entry.origin)
        return Version(blob, entry.mode, entry.mtime_ns, origin, base=base, change=change)

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
            if step.copy:
                copy = self._move_aside(path, self._entry(path), step.copy)
                self._conflict(path, copy, step.kept, e, step.conflict)
            elif step.conflict:
                self._conflict(e.path, path, step.kept, e, step.conflict)
            self._move(e, path, identity)
        elif step.do == Do.REMEMBER:
            self._remember(path, step.base, e)
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
        new = [e for e in self.dirty.values() if e.pk is None and e.exists]
        remembered = [e for e in self.dirty.values() if e.pk is None and not e.exists]
        old = [e for e in self.dirty.values() if e.pk is not None]
        for e in self.dirty.values():
            e.updated_at = now
        sync_directories(self.dirs)
        self.dirs.clear()
        with transaction.atomic():
            insert_entry_rows([*self.fresh.values(), *(entry_values(e) for e in new)])
            Entry.objects.bulk_create(remembered, batch_size=2000)
            Entry.objects.bulk_update(old, ENTRY_FIELDS, batch_size=2000)
            Conflict.objects.bulk_create(self.conflicts)
            history.append(self.area, self.changes, self.local_key)
            # The identities of the changes just appended are marked seen by append.
            recorded = {(c.origin, c.origin_seq) for c in self.changes if c.origin}
            history.mark_seen(self.area, sorted(self.applied - recorded))
        for path in [*self.fresh, *(e.path for e in [*new, *remembered])]:
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

    def _remember(self, path: str, deleted: bytes, e: RemoteEvent) -> None:
        """A tombstone for a path never here: nothing on disk, nothing to record."""
        entry = Entry(area=self.area, path=path, deleted_hash=deleted, origin=e.origin)
        entry.change_origin, entry.change_seq = e.origin, e.origin_seq
        self.entries[path] = entry
        self._touch(entry)

    def _move(self, e: RemoteEvent, path: str, identity: dict) -> None:
        """Rename the change's source to `path` (its target, or a conflict copy's name)."""
        source, target = self._entry(e.old_path), self._entry(path)
        old_full, new_full = self.paths.full(e.old_path), self.paths.full(path)
        check_disk(old_full, source)
        check_disk(new_full, target)
        if target is not None and target.exists and bytes(target.blob_hash) != e.blob:
            raise FileExistsError(errno.EEXIST, "another version is there", path)
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
        self._save_entry(path, target, e.blob, st, e.origin)
        self.changes.append(
            Change(
                Kind.RENAME,
                path,
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
        staging = self.content.stage(e, self.paths.full_name(path))
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
        # The changes folded into it travel on with it (areas.index.identities).
        return {"origin": e.origin, "origin_seq": e.origin_seq, "also": e.also}

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




def collapse(events: list[RemoteEvent]) -> tuple[list[RemoteEvent], list[tuple[bytes, int]]]:
    """Fold each chain of changes of one path into one change: (events, folded away).

    A change whose base is the version the previous change of the same path made continues
    it: create X then edit X to Y is a create of Y; create then delete is the state "gone"
    (a delete of that version only, as a snapshot's tombstone is).
    Only the last version's content is then fetched, which also gets past versions the peer
    no longer has. A rename ends the chain of its source; a change of the moved content
    after it makes it a delete of the source and that change at the target.
    """
    out: list[RemoteEvent | None] = []
    last: dict[str, int] = {}
    gone: list[tuple[bytes, int]] = []
    born: dict[int, bytes] = {}  # a chain that began with a create: the content it made
    for e in events:
        if e.kind == Kind.RENAME:
            i = last.pop(e.old_path, None)
            made = out[i] if i is not None else None
            if made is not None and made.kind == Kind.RENAME and made.old_path == e.path:
                if made.blob == e.blob:  # moved there and back: nothing moved
                    out[i] = None
                    gone.extend((*made.also, *_identity_of(made), *e.also, *_identity_of(e)))
                    continue
            if made is not None and made.kind != Kind.RENAME and made.base is None:
                if made.blob == e.blob:  # made, then moved: made at the new path
                    ids = (*made.also, *_identity_of(made))
                    out[i] = replace(e, seq=made.seq, kind=Kind.CREATE, old_path="", also=ids)
                    last[e.path] = i
                    continue
            last[e.path] = len(out)
            out.append(e)
            continue
        i = last.get(e.path)
        if i is not None and out[i] is not None and out[i].kind == Kind.RENAME:
            if out[i].blob == e.base:
                # Moved, then changed: a delete of the source and the change at the target,
                # so the change is decided where its base is, not against a moved copy.
                r = out[i]
                out[i] = replace(r, kind=Kind.DELETE, path=r.old_path, old_path="", blob=None,
                                 base=r.blob)  # fmt: skip
            i = None
        if i is None or out[i] is None or out[i].blob != e.base:
            last[e.path] = len(out)
            if e.base is None and e.blob is not None:
                born[len(out)] = e.blob
            out.append(e)
            continue
        first = out[i]
        ids = (*first.also, *_identity_of(first))
        if e.kind == Kind.DELETE and first.base is None:
            # Made and removed again: where a copy of that version is, it goes too (a
            # conflict copy both peers made); a path never here keeps its tombstone.
            base = born.get(i, e.base)  # a copy made elsewhere holds what was made
            out[i] = replace(e, seq=first.seq, base=base, snapshot=True, also=(*ids, *e.also))
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
