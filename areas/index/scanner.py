"""Indexing the Real: compare an area's files with its entries and record what changed.

A file whose size, mtime, ctime and inode are those of its entry is not read again. A changed
file is chunked and hashed; if it changes while being read, it is left for the next scan.
A blob that leaves one path and appears at another in the same scan is a rename.
"""

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Q

import areas.index.history as history
from areas.files import Hashed, hashing, is_ignored
from areas.files import syscalls as heldcalls
from areas.index.blobs import entry_row, insert_entry_rows, store_blobs
from areas.index.history import Change, Kind
from areas.index.locks import index_lock
from areas.models import Area, BlobChunk, Entry

# When this process last started scanning each area (time.monotonic(), by area id).
_started: dict[int, float] = {}
# A scan commits its changes (visible to peers) this many files or bytes at a time.
RECORD_FILES = 1000
FIRST_RECORD_FILES = 200
RECORD_BYTES = 64 * 1024 * 1024
ENTRY_FIELDS = [
    "blob_hash", "deleted_hash", "size", "mtime_ns", "ctime_ns", "inode", "mode", "origin",
]  # fmt: skip


@dataclass
class ScanResult:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)


@dataclass
class _Seen:
    path: str
    st: os.stat_result | heldcalls.Status
    hashed: Hashed | None = None


def walk(root: Path):
    """(relative path, full path, stat) of regular files under root; no symlinks or temp files."""
    stack = [("", str(root))]
    while stack:
        prefix, directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                items = list(it)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for item in items:
            if is_ignored(item.name):
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append((prefix + item.name + "/", item.path))
            elif stat.S_ISREG(st.st_mode):
                yield prefix + item.name, item.path, st


def same_stat(entry: Entry, st: os.stat_result) -> bool:
    return (entry.size, entry.mtime_ns, entry.ctime_ns, entry.inode) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
    )


def stat_fields(st: os.stat_result) -> dict:
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "mode": stat.S_IMODE(st.st_mode),
    }


def scan_area(
    area: Area,
    origin: bytes,
    announce: Callable[[], None] | None = None,
    unless_since: float | None = None,
) -> ScanResult:
    """Bring the area's index up to date with its files; record local history events.

    Changes are committed a batch at a time, so a peer pulling meanwhile gets them early.

    `unless_since` (time.monotonic() of the last change seen): skip if a scan here started
    after it, e.g. a peer's consensus scan while we waited for the lock.
    """
    root = Path(area.path)
    with index_lock(area.pk):
        if unless_since is not None and _started.get(area.pk, -1.0) > unless_since:
            return ScanResult()
        _started[area.pk] = time.monotonic()
        found = list(walk(root))
        entries = _entries(area, [rel for rel, _, _ in found])
        result = ScanResult()
        walked, changed = set(), []
        for rel, full, st in found:
            walked.add(rel)
            entry = entries.get(rel)
            if entry is not None and entry.exists and same_stat(entry, st):
                result.unchanged += 1
            else:
                changed.append((rel, full, st))
        # Smallest first (as Syncthing's "smallestFirst"): many small files reach pulling
        # peers early, while large ones are still hashed.
        changed.sort(key=lambda file: file[2].st_size)
        _Recorder(area, origin, entries, walked, result, announce).run(changed)
    return result


def _entries(area: Area, walked: list[str]) -> dict[str, Entry]:
    """The entries a scan compares the disk with. In an Unreal area, only the files on this
    disk (those realized, or put there) and the paths walked: the rest is known by its
    metadata alone, and its absence from the disk says nothing."""
    found = Entry.objects.filter(area=area)
    if area.mode == Area.Mode.UNREAL:
        found = found.filter(Q(path__in=walked) | ~Q(inode=0))
    return {e.path: e for e in found}


def on_disk(area: Area, entry: Entry) -> bool:
    """Whether the entry's file is on this disk: every one of a Real area, those of an
    Unreal area that were realized (their disk attributes indexed)."""
    return area.mode == Area.Mode.REAL or entry.inode != 0


def scan_paths(area: Area, origin: bytes, paths: list[str]) -> ScanResult:
    """Re-index just these paths (the caller holds the area's index lock)."""
    root = Path(area.path)
    entries = {e.path: e for e in Entry.objects.filter(area=area, path__in=paths)}
    result = ScanResult()
    walked, changed = set(), []
    for rel in paths:
        full = root / rel
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        walked.add(rel)
        entry = entries.get(rel)
        if entry is not None and entry.exists and same_stat(entry, st):
            result.unchanged += 1
        else:
            changed.append((rel, str(full), st))
    _Recorder(area, origin, entries, walked, result).run(changed)
    return result


def _hashed(files: list[tuple[str, str, os.stat_result]]) -> Iterator[_Seen | None]:
    """Chunk and hash changed files, several at once (areas.files.hashing)."""
    for found in hashing.hashed(files):
        yield None if found is None else _Seen(*found)


class _Recorder:
    """Turns hashed files into entries and history events, committed a batch at a time.

    A file gone from disk is a delete at the end, or a rename if its content turned up elsewhere.
    """

    def __init__(self, area, origin, entries, walked: set[str], result, announce=None):
        self.area, self.origin, self.entries, self.result = area, origin, entries, result
        self.announce = announce  # told after each batch is committed
        self.gone = {
            p: e for p, e in entries.items() if e.exists and p not in walked and on_disk(area, e)
        }
        self.gone_by_blob: dict[bytes, list[str]] = {}
        for path, entry in sorted(self.gone.items()):
            self.gone_by_blob.setdefault(bytes(entry.blob_hash), []).append(path)

    def run(self, changed: list[tuple[str, str, os.stat_result]]) -> None:
        batch: list[_Seen] = []
        size = 0
        files = FIRST_RECORD_FILES  # a peer waiting for the first batch starts sooner
        for seen in _hashed(changed):
            if seen is None:
                continue
            batch.append(seen)
            size += seen.st.st_size
            if len(batch) >= files or size >= RECORD_BYTES:
                self.record(batch)
                batch, size, files = [], 0, RECORD_FILES
        self.record(batch)
        self.record_deletes()

    def record(self, fresh: list[_Seen]) -> None:
        if not fresh:
            return
        # Blobs and changes are committed together: one commit, one disk wait, per batch.
        with transaction.atomic():
            changes = self._record(fresh)
        self._committed(changes)

    def _committed(self, changes: list[Change]) -> None:
        self.result.changes.extend(changes)
        if self.announce is not None and changes:
            self.announce()

    def _record(self, fresh: list[_Seen]) -> list[Change]:
        store_blobs(s.hashed for s in fresh)
        changes: list[Change] = []
        updates: list[Entry] = []
        creates: list[tuple] = []  # rows of new entries (see insert_entry_rows)
        for s in sorted(fresh, key=lambda s: s.path):
            path, old = s.path, self.entries.get(s.path)
            fields = stat_fields(s.st)
            if old is not None and old.exists and bytes(old.blob_hash) == s.hashed.hash:
                if old.mode != fields["mode"] or old.mtime_ns != fields["mtime_ns"]:
                    # Same content, new mode or mtime: an edit whose base is its own blob.
                    changes.append(_change(Kind.EDIT, path, s, base=s.hashed.hash))
                    fields["origin"] = self.origin
                _set(old, **fields)  # touched, same content
                updates.append(old)
                continue
            source = None if old is not None and old.exists else self._renamed_from(s)
            if source is not None:
                changes.append(_change(Kind.RENAME, path, s, base=None, old_path=source))
                moved = self.gone.pop(source)
                moved.bury()
                updates.append(moved)
            elif old is not None and old.exists:
                edit = _shares_chunks(bytes(old.blob_hash), s.hashed)
                kind = Kind.EDIT if edit else Kind.OVERWRITE
                changes.append(_change(kind, path, s, base=bytes(old.blob_hash)))
            else:
                changes.append(_change(Kind.CREATE, path, s, base=None))
            if old is None:
                # A path comes once per scan: a new entry needs no object, only its row.
                creates.append(entry_row(self.area.pk, path, s.hashed.hash, s.st, self.origin))
            else:
                _set(old, blob_hash=s.hashed.hash, origin=self.origin, **fields)
                updates.append(old)
        self._save(changes, creates, updates)
        return changes

    def _renamed_from(self, s: _Seen) -> str | None:
        candidates = self.gone_by_blob.get(s.hashed.hash)
        while candidates:
            source = candidates.pop(0)
            if source in self.gone:
                return source
        return None

    def record_deletes(self) -> None:
        changes = []
        for path, entry in sorted(self.gone.items()):
            # With the deleted file's time: a change made apart is weighed against it.
            changes.append(
                Change(Kind.DELETE, path, None, bytes(entry.blob_hash), 0, entry.mtime_ns)
            )
            entry.bury()
        self._save(changes, [], list(self.gone.values()))
        self.gone.clear()
        self._committed(changes)

    def _save(self, changes: list[Change], creates: list[tuple], updates: list[Entry]) -> None:
        if not (changes or creates or updates):
            return
        with transaction.atomic(savepoint=False):
            insert_entry_rows(creates)
            # Inserted without a key: a later batch that changes one updates it by path.
            Entry.objects.bulk_update(
                [e for e in updates if e.pk is not None], ENTRY_FIELDS, batch_size=2000
            )
            for e in updates:
                if e.pk is None:
                    Entry.objects.filter(area=self.area, path=e.path).update(
                        **{f: getattr(e, f) for f in ENTRY_FIELDS}
                    )
            history.append(self.area, changes, self.origin)


def _set(entry: Entry, **fields) -> None:
    for key, value in fields.items():
        setattr(entry, key, value)


def _change(kind: str, path: str, s: _Seen, base: bytes | None, old_path: str = "") -> Change:
    return Change(
        kind=kind,
        path=path,
        blob_hash=s.hashed.hash,
        base_hash=base,
        size=s.st.st_size,
        mtime_ns=s.st.st_mtime_ns,
        mode=stat.S_IMODE(s.st.st_mode),
        old_path=old_path,
    )


def _shares_chunks(old_hash: bytes, new: Hashed) -> bool:
    new_chunks = {c.hash for c in new.chunks}
    if not new_chunks:
        return False
    if old_hash in new_chunks:
        return True  # the old version, a blob of one chunk, is a chunk of the new one
    return BlobChunk.objects.filter(blob__hash=old_hash, hash__in=list(new_chunks)).exists()
