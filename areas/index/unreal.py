"""An Unreal area's files made Real one at a time, and deleted without ever being here.

The mount realizes a file before it is written: its content, fetched and checked, is put
at its path, and the index notes the file is on this disk (its disk attributes), so scans
and peers' changes treat it as they treat any Real file from then on (areas.index.scanner,
areas.pull.unreal). A file written over from nothing needs no content: an empty one.
Both happen under the area's index lock, so no scan or peer's change comes between the
check that the version is still the path's and the file showing.
"""

import os
from pathlib import Path

from django.db import transaction

from areas.files import AreaPaths, sync_directories
from areas.index.history import Change, Kind, append
from areas.index.locks import index_lock_within
from areas.index.scanner import stat_fields
from areas.models import Area, Entry


class VersionGone(Exception):
    """The path no longer holds the version the mount showed (a peer's change came)."""


def _unreal_entry(area: Area, path: str, blob: bytes) -> Entry:
    entry = Entry.objects.filter(area=area, path=path).first()
    if entry is None or entry.blob_hash is None or bytes(entry.blob_hash) != blob:
        raise VersionGone(f"{path} changed since it was shown")
    if entry.inode != 0:
        raise VersionGone(f"{path} is on this disk already")
    return entry


def put_realized(area: Area, path: str, blob: bytes, staged: Path, wait: float) -> os.stat_result:
    """Put `staged` (the version's whole content, checked, with its mode and time) at
    `path`, and note it there. VersionGone if the path's version changed meanwhile, or a
    file is there already; TimeoutError if the area stays busy for `wait` seconds."""
    full = AreaPaths(area.path).full(path)
    with index_lock_within(area.pk, wait):
        entry = _unreal_entry(area, path, blob)
        if os.path.lexists(full):
            raise VersionGone(f"{path}: a file is there already")
        os.rename(staged, full)
        sync_directories({str(full.parent)})
        st = os.lstat(full)
        Entry.objects.filter(pk=entry.pk).update(**stat_fields(st))
        return st


def put_emptied(area: Area, path: str, blob: bytes, mode: int, wait: float) -> None:
    """An Unreal file about to be written over from nothing (opened with O_TRUNC): its
    content is not needed, so an empty file is made at `path` instead of realizing it.
    The index notes a file on this disk, not yet indexed (no ctime matches): the next scan
    records what is written there as a change of this version, and a delete if it goes
    first. VersionGone, TimeoutError: as put_realized."""
    full = AreaPaths(area.path).full(path)
    with index_lock_within(area.pk, wait):
        entry = _unreal_entry(area, path, blob)
        full.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except FileExistsError:
            raise VersionGone(f"{path}: a file is there already") from None
        try:
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        Entry.objects.filter(pk=entry.pk).update(inode=inode, ctime_ns=0)


def delete_unreal(area: Area, path: str, blob: bytes, origin: bytes, wait: float) -> None:
    """Delete a file of an Unreal area that is not on this disk: its tombstone and the
    change, as a scan records a file gone (VersionGone, TimeoutError: as put_realized)."""
    with index_lock_within(area.pk, wait), transaction.atomic():
        entry = _unreal_entry(area, path, blob)
        change = Change(Kind.DELETE, path, None, blob, 0, entry.mtime_ns)
        entry.bury()
        entry.save(update_fields=["blob_hash", "deleted_hash"])
        append(area, [change], origin)
