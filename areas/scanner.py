"""Indexing the Real: compare an area's files with its entries and record what changed.

A file whose size, mtime, ctime and inode are those of its entry is not read again. A changed
file is chunked and hashed; if it changes while being read, it is left for the next scan.
A blob that leaves one path and appears at another in the same scan is a rename.
"""

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from . import history
from .blobs import insert_entries, store_blobs
from .chunking import Hashed, hash_file
from .history import Change, Kind
from .locks import index_lock
from .models import Area, BlobChunk, Entry
from .paths import is_ignored

HASH_THREADS = min(2, os.cpu_count() or 1)


@dataclass
class ScanResult:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)


@dataclass
class _Seen:
    path: str
    st: os.stat_result
    hashed: Hashed | None = None


def walk(root: Path):
    """(relative path, full path, stat) of the regular files under root, not following
    symlinks, skipping our temporary files."""
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


def scan_area(area: Area, origin: bytes) -> ScanResult:
    """Bring the area's index up to date with its files; record local history events."""
    root = Path(area.path)
    with index_lock(area.pk):
        entries = {e.path: e for e in Entry.objects.filter(area=area)}
        result = ScanResult()
        seen: dict[str, _Seen] = {}
        changed = []
        for rel, full, st in walk(root):
            entry = entries.get(rel)
            if entry is not None and entry.exists and same_stat(entry, st):
                result.unchanged += 1
                seen[rel] = _Seen(rel, st)
            else:
                changed.append((rel, full, st))
        seen.update(_hash_all(changed))
        _record(area, origin, entries, seen, result)
    return result


def scan_paths(area: Area, origin: bytes, paths: list[str]) -> ScanResult:
    """Re-index just these paths (the caller holds the area's index lock)."""
    root = Path(area.path)
    entries = {e.path: e for e in Entry.objects.filter(area=area, path__in=paths)}
    result = ScanResult()
    seen: dict[str, _Seen] = {}
    changed = []
    for rel in paths:
        full = root / rel
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        entry = entries.get(rel)
        if entry is not None and entry.exists and same_stat(entry, st):
            result.unchanged += 1
            seen[rel] = _Seen(rel, st)
        else:
            changed.append((rel, str(full), st))
    seen.update(_hash_all(changed))
    _record(area, origin, entries, seen, result)
    return result


def _hash_all(files: list[tuple[str, str, os.stat_result]]) -> dict[str, _Seen]:
    """Chunk and hash changed files, several at once (hashing lets other threads run)."""
    if len(files) < 8:
        found = map(_hash_one, files)
    else:
        with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="scan-hash") as pool:
            found = list(pool.map(_hash_one, files, chunksize=16))
    return {s.path: s for s in found if s is not None}


def _hash_one(file: tuple[str, str, os.stat_result]) -> "_Seen | None":
    rel, full, st = file
    try:
        hashed = hash_file(Path(full))
        after = os.lstat(full)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        return None  # being written: the next scan reads it when it is quiet
    return _Seen(rel, after, hashed)


def _record(area, origin, entries: dict[str, Entry], seen: dict[str, _Seen], result) -> None:
    gone = {p: e for p, e in entries.items() if e.exists and p not in seen}
    fresh = {p: s for p, s in seen.items() if s.hashed is not None}
    store_blobs(s.hashed for s in fresh.values())

    # Renames: a blob gone from one path and new at another.
    gone_by_blob: dict[bytes, list[str]] = {}
    for path, entry in sorted(gone.items()):
        gone_by_blob.setdefault(bytes(entry.blob_hash), []).append(path)
    renamed_from: dict[str, str] = {}
    for path, s in sorted(fresh.items()):
        old = entries.get(path)
        if old is not None and old.exists:
            continue
        candidates = gone_by_blob.get(s.hashed.hash)
        if candidates:
            renamed_from[path] = candidates.pop(0)

    changes = result.changes
    updates: list[Entry] = []
    creates: list[Entry] = []
    for path, s in sorted(fresh.items()):
        old = entries.get(path)
        fields = stat_fields(s.st)
        if old is not None and old.exists and bytes(old.blob_hash) == s.hashed.hash:
            _set(old, blob_hash=s.hashed.hash, **fields)  # touched, same content
            updates.append(old)
            continue
        if path in renamed_from:
            source = renamed_from[path]
            changes.append(_change(Kind.RENAME, path, s, base=None, old_path=source))
            _set(gone.pop(source), blob_hash=None)
        elif old is not None and old.exists:
            kind = Kind.EDIT if _shares_chunks(bytes(old.blob_hash), s.hashed) else Kind.OVERWRITE
            changes.append(_change(kind, path, s, base=bytes(old.blob_hash)))
        else:
            changes.append(_change(Kind.CREATE, path, s, base=None))
        if old is None:
            creates.append(
                Entry(area=area, path=path, blob_hash=s.hashed.hash, origin=origin, **fields)
            )
        else:
            _set(old, blob_hash=s.hashed.hash, origin=origin, **fields)
            updates.append(old)
    for path, entry in sorted(gone.items()):
        changes.append(Change(Kind.DELETE, path, blob_hash=None, base_hash=bytes(entry.blob_hash)))
        _set(entry, blob_hash=None)
    for source in renamed_from.values():
        updates.append(entries[source])
    updates.extend(gone.values())
    with transaction.atomic():
        insert_entries(creates)
        Entry.objects.bulk_update(
            updates,
            ["blob_hash", "size", "mtime_ns", "ctime_ns", "inode", "mode", "origin"],
            batch_size=2000,
        )
        history.append(area, changes, origin)


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
    return BlobChunk.objects.filter(blob__hash=old_hash, hash__in=list(new_chunks)).exists()
