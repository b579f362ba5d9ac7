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
from pathlib import Path

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
    rows,
    scan_paths,
    stat_fields,
)
from areas.index.versions import (
    NO_STAMP,
    Stamp,
    Vector,
    includes,
    pack,
    pack_known,
    pack_stamp,
    unpack,
    unpack_known,
    unpack_stamp,
)
from areas.models import Area, Conflict, Entry
from areas.pull.fetch import ChunkFetcher, Unavailable
from areas.pull.prestage import Outcome
from areas.pull.rules import Deleted, Do, Step, Version, decide, news
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
    "version",
    "known",
    "deleted_version",
    "stamp",
    "moved",
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
    state: "_State | None"
    staging: "Future | Outcome | Routed"  # of the Staged file


@dataclass(frozen=True)
class _State:
    """What a path descends from after a step (Entry.version, known and stamp; a
    tombstone's deleted content). A change of this peer's own has none: the history gives
    it its own (areas.index.history.append)."""

    version: Vector
    known: Vector
    stamp: Stamp
    deleted: Deleted | None = None
    moved: bool = False

    @classmethod
    def of(cls, step: Step) -> "_State":
        return cls(step.version, step.known, step.stamp, step.deleted, step.moved)

    def packed(self) -> tuple[bytes, bytes, bytes, bool]:
        """Entry.version, known (empty: the same), stamp and moved."""
        known = pack_known(self.known, self.version)
        return pack(self.version), known, pack_stamp(self.stamp), self.moved

    def give(self, entry: Entry) -> None:
        entry.version, entry.known, entry.stamp, entry.moved = self.packed()
        if self.deleted is not None:
            entry.deleted_hash = self.deleted.blob
            entry.mtime_ns = self.deleted.mtime_ns
            entry.deleted_version = pack(self.deleted.version)




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
        """Apply one change; it is recorded, and its version kept, once all it wrote is in
        place. A change that failed is not: the next consensus finds it new again."""
        try:
            self.apply(e)
        except (CorruptContent, Unavailable) as exc:
            raise BadData(str(exc)) from None
        except (OSError, DiskChanged) as exc:
            self.stats.failed(e, getattr(exc, "strerror", None) or str(exc))
            return
        if len(self.pending) >= STAGE_FILES or self.pending_bytes >= STAGE_BYTES:
            self.expose_pending()

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
        return _version_of(self._entry(path))

    def _carry_out(self, step: Step, e: RemoteEvent) -> None:
        path, state, relayed = step.path, _State.of(step), _relayed(e, step.path)
        if step.do == Do.SET_STATUS:
            self._set_status(path, self._entry(path), e, relayed, state)
        elif step.do == Do.WRITE:
            if step.conflict:
                self._conflict(path, "", None, e, step.conflict)
            self._write(path, e, self._entry(path), step.kind, step.base, relayed, state)
        elif step.do == Do.DELETE:
            aside = bool(step.copy)
            if aside:
                copy = self._move_aside(path, step)
                self._conflict(path, copy, step.kept, e, step.conflict)
            self._remove(path, step.base, e, relayed, state, aside)
        elif step.do == Do.MOVE:
            if step.copy:
                copy = self._move_aside(path, step)
                self._conflict(path, copy, step.kept, e, step.conflict)
            elif step.conflict:
                self._conflict(e.path, path if step.own else "", step.kept, e, step.conflict)
            self._move(e, step)
        elif step.do == Do.KEEP:
            if step.conflict:
                self._conflict(path, "", step.kept, e, step.conflict)
            self._keep(path, state, e)
        elif step.do == Do.THEIRS_WIN:
            entry, kind, base = None, Kind.CREATE, None
            if step.copy:
                copy = self._move_aside(path, step)
            else:  # copied before (and maybe deleted since): replaced
                copy, entry, kind, base = "", self._entry(path), Kind.OVERWRITE, step.kept
            self._conflict(path, copy, step.kept, e, step.conflict)
            self._write(path, e, entry, kind, base, relayed, state)
        elif step.do == Do.MINE_WIN:
            self._conflict(path, step.copy, step.kept, e, step.conflict)
            # The copy is this peer's making: a change of its own, with the copied version.
            made = {"version": step.copy_version, "stamp": step.copy_stamp}
            self._write(step.copy, e, self._entry(step.copy), Kind.CREATE, None, made, None)
            self._keep(path, state, e)

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
        """Write what the window changed: entries, conflicts, history."""
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
        # Inserted without a key, or given a version by append: read again if needed.
        own = [p for c in self.changes if not c.origin for p in (c.path, c.old_path) if p]
        for path in [*self.fresh, *(e.path for e in [*new, *remembered]), *own]:
            self.entries.pop(path, None)
        self.fresh.clear()
        self.dirty.clear()
        self.changes, self.conflicts = [], []




    # --- effects ----------------------------------------------------------------------------
    def _remove(
        self, path: str, base, e: RemoteEvent, identity: dict, state: _State, aside: bool
    ) -> None:
        """Delete the file (`aside`: moved to a conflict copy already) and record it."""
        entry = self._entry(path)
        if not aside:
            self._delete_file(path, entry)
            entry.bury()
        state.give(entry)
        self._touch(entry)
        self.changes.append(Change(Kind.DELETE, path, None, base, 0, e.mtime_ns, **identity))
        self.stats.files += 1

    def _keep(self, path: str, state: _State, e: RemoteEvent) -> None:
        """Nothing on disk changes: the path (a tombstone, where nothing is here) takes the
        state the rule gave it. Nothing to record."""
        entry = self._entry(path)
        if entry is None:
            entry = Entry(area=self.area, path=path, origin=e.origin)
            self.entries[path] = entry
        state.give(entry)
        self._touch(entry)

    def _move(self, e: RemoteEvent, step: Step) -> None:
        """Rename the step's source to its path: the change's target, over the version it
        replaces there, or a conflict copy's name (then the copy is this peer's own)."""
        path = step.path
        source, target = self._entry(step.source), self._entry(path)
        replaced = (e.blob, step.base, step.kept)
        if target is not None and target.exists and bytes(target.blob_hash) not in replaced:
            raise FileExistsError(errno.EEXIST, "another version is there", path)
        st = self._move_file(step.source, path, source, target)
        source.bury()
        gone = step.deleted
        _State(step.source_version, step.source_known, gone.stamp, gone, True).give(source)
        self._touch(source)
        stat = (st.st_size, st.st_mtime_ns, e.mode)
        if step.own:
            self._save_entry(path, target, e.blob, st, e.origin, None)
            relayed = _relayed(e, step.source)
            self.changes.append(
                Change(Kind.DELETE, step.source, None, e.blob, 0, e.mtime_ns, **relayed)
            )
            self.changes.append(
                Change(Kind.CREATE, path, e.blob, None, *stat, version=step.version,
                       stamp=step.stamp)  # fmt: skip
            )
        else:
            self._save_entry(path, target, e.blob, st, e.origin, _State.of(step))
            relayed = _relayed(e, path)
            self.changes.append(
                Change(Kind.RENAME, path, e.blob, None, *stat, old_path=step.source, **relayed)
            )
        self.stats.files += 1

    def _write(
        self,
        path: str,
        e: RemoteEvent,
        entry: Entry | None,
        kind,
        base,
        identity: dict,
        state: _State | None,
    ) -> None:
        """Stage the file; it is put in place (and recorded) by expose_pending. `state`:
        the path's after it (None: a change of this peer's own)."""
        if path in self.pending:
            self.expose_pending()
        staging = self.content.stage(e, self.paths.full_name(path))
        self.pending[path] = _Pending(e, path, entry, kind, base, identity, state, staging)
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
            self._save_entry(p.path, p.expect, e.blob, st, e.origin, p.state)
            self.changes.append(
                Change(
                    p.kind, p.path, e.blob, p.base, st.st_size, st.st_mtime_ns, e.mode, **p.identity
                )
            )
            self.stats.files += 1

    def _set_status(
        self, path: str, entry: Entry, e: RemoteEvent, identity: dict, state: _State
    ) -> None:
        """Give the file (its content unchanged) the change's permissions and time."""
        st = self._restatus_file(path, entry, e)
        self._save_entry(path, entry, e.blob, st, e.origin, state)
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

    def _move_aside(self, path: str, step: Step) -> str:
        """Move this peer's version at `path` to the step's conflict copy: a create of its
        own, with the version copied (so every peer making that copy makes the same)."""
        entry, copy = self._entry(path), step.copy
        copied = self._entry(copy)
        blob = bytes(entry.blob_hash)
        if copied is not None and copied.exists and bytes(copied.blob_hash) != blob:
            raise FileExistsError(errno.EEXIST, "another version is there", copy)
        st = self._move_file(path, copy, entry, copied)
        self._save_entry(copy, copied, blob, st, bytes(entry.origin), None)
        entry.bury()
        self._touch(entry)
        self.changes.append(
            Change(Kind.CREATE, copy, blob, None, st.st_size, st.st_mtime_ns, entry.mode,
                   version=step.copy_version, stamp=step.copy_stamp)  # fmt: skip
        )
        return copy

    # --- the disk (an Unreal area has none: UnrealApplier) ------------------------------------
    def _delete_file(self, path: str, entry: Entry) -> None:
        full = self.paths.full(path)
        check_disk(full, entry)
        full.unlink()
        self.dirs.add(str(full.parent))
        remove_empty_parents(self.root, full)

    def _move_file(self, old: str, new: str, source: Entry, target: Entry | None):
        """Rename a file, checked to hold what the index says (a target: only the same
        content, if anything); its attributes after."""
        old_full, new_full = self.paths.full(old), self.paths.full(new)
        check_disk(old_full, source)
        check_disk(new_full, target)
        if self.staging_dir is None:
            new_full.parent.mkdir(parents=True, exist_ok=True)
        else:
            make_directories(str(new_full.parent), str(self.staging_dir))
        os.rename(old_full, new_full)
        self.dirs.update((str(new_full.parent), str(old_full.parent)))
        remove_empty_parents(self.root, old_full)
        return os.lstat(new_full)

    def _restatus_file(self, path: str, entry: Entry, e: RemoteEvent):
        full = self.paths.full(path)
        check_disk(full, entry)
        if entry.mode != e.mode:
            os.chmod(full, e.mode, follow_symlinks=False)
        if entry.mtime_ns != e.mtime_ns:
            os.utime(full, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
        return os.lstat(full)

    def _save_entry(
        self, path, entry: Entry | None, blob: bytes, st, origin: bytes, state: _State | None
    ) -> None:
        """`state`: the path's now (None: a change of this peer's own, given it by the
        history)."""
        if entry is None and path in self.entries and self.entries[path] is None:
            row = entry_row(self.area.pk, path, blob, st, origin)
            self.fresh[path] = (*row[:-4], *state.packed()) if state is not None else row
            return
        entry = entry or self._entry(path) or Entry(area=self.area, path=path)
        for key, value in {**stat_fields(st), "blob_hash": blob, "origin": origin}.items():
            setattr(entry, key, value)
        if state is not None:
            state.give(entry)
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




def _version_of(entry: Entry | None) -> Version | None:
    if entry is None:
        return None
    version, stamp = unpack(entry.version), unpack_stamp(entry.stamp)
    known = unpack_known(entry.known, version)
    if not entry.exists:
        deleted = bytes(entry.deleted_hash) if entry.deleted_hash is not None else None
        return Version(deleted, mtime_ns=entry.mtime_ns, gone=True, version=version,
                       known=known, deleted_version=unpack(entry.deleted_version),
                       stamp=stamp)  # fmt: skip
    blob, origin = bytes(entry.blob_hash), bytes(entry.origin)
    return Version(blob, entry.mode, entry.mtime_ns, origin, version=version, known=known,
                   stamp=stamp)  # fmt: skip


def _relayed(e: RemoteEvent, path: str) -> dict:
    """How the history records a peer's change at one of its paths: its identity, and what
    it carried for that path."""
    moved_from = e.kind == Kind.RENAME and path == e.old_path
    return {
        "origin": e.origin,
        "origin_seq": e.origin_seq,
        "version": e.old_version if moved_from else e.version,
        "old_version": e.old_version if e.kind == Kind.RENAME and not moved_from else (),
        "base_version": e.base_version,
        "stamp": e.old_stamp if moved_from else e.stamp,
        "old_stamp": e.old_stamp if e.kind == Kind.RENAME and not moved_from else NO_STAMP,
        "moved": e.kind == Kind.RENAME or e.moved,  # a part of a rename, if recorded alone
    }


def collapse(events: list[RemoteEvent]) -> list[RemoteEvent]:
    """Fold each chain of changes of one path into its last change.

    A change whose version includes the previous change's of the same path continues it:
    create X then edit X to Y is a create of Y; create then delete is a delete (a tombstone
    where the path was never seen). Only the last version's content is then fetched, which
    also gets past versions the peer no longer has. A rename ends the chains of both its
    paths: it is applied as it was made.
    """
    out: list[RemoteEvent | None] = []
    last: dict[str, int] = {}
    for e in events:
        if e.kind == Kind.RENAME:
            last.pop(e.old_path, None)
            last.pop(e.path, None)
            out.append(e)
            continue
        i = last.get(e.path)
        first = out[i] if i is not None else None
        if first is not None and includes(e.version, first.version):
            out[i] = None
            if e.kind != Kind.DELETE:
                if first.kind != Kind.DELETE and first.base is None:
                    e = replace(e, kind=Kind.CREATE, base=None)  # made, then changed
                elif first.kind == Kind.DELETE and e.kind == Kind.CREATE:
                    e = replace(e, kind=Kind.OVERWRITE, base=first.base)  # made again
                else:
                    e = replace(e, base=first.base)
        last[e.path] = len(out)
        out.append(e)
    return [e for e in out if e is not None]


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
    """A page of a peer's events as windows to apply: those bringing a version this peer's
    does not include, each chain of changes of a path folded into one."""
    paths = list({p for e in events for p in (e.path, e.old_path) if p})
    versions = {
        path: Version(None, known=unpack_known(k, unpack(v)))
        for path, v, k in rows(
            "SELECT path, version, known FROM areas_entry WHERE area_id = %s AND path = ANY(%s)",
            [area.pk, paths],
        )
    }
    events = collapse([e for e in events if news(e, versions.get)])
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
