"""Applying a peer's changes to an Unreal area: the index and the history change as they
would for a Real one; the disk changes only for the files realized here (areas.index.unreal).
The others are known by their metadata, their content fetched when read through the mount
(fusemount). A realized file a peer's change replaces becomes Unreal again: the change was
made knowing its version, or that version was kept as a conflict copy first."""

import os
import stat
from typing import NamedTuple

from areas.files import DiskChanged
from areas.index import Change, RemoteEvent, on_disk
from areas.models import Area, Entry
from areas.pull.applier import Applier


class _Known(NamedTuple):
    """What the index keeps of a file (areas.index.stat_fields) when no disk says it."""

    st_size: int
    st_mtime_ns: int
    st_mode: int
    st_ino: int = 0
    st_ctime_ns: int = 0


def _known(size: int, mtime_ns: int, mode: int) -> _Known:
    return _Known(size, mtime_ns, stat.S_IFREG | stat.S_IMODE(mode))


class UnrealApplier(Applier):
    def prepare(self, events: list[RemoteEvent], after=None) -> None:
        pass  # no content to fetch

    def _on_disk(self, path: str, entry: Entry | None) -> Entry | None:
        """The entry, if its file is on this disk (realized); None if the path has nothing
        here. A file there the index does not know of yet: DiskChanged (it is indexed,
        then the change decided again)."""
        if entry is not None and entry.exists and on_disk(self.area, entry):
            return entry
        if os.path.lexists(self.paths.full(path)):
            raise DiskChanged(f"{path} appeared")
        return None

    def _write(self, path, e: RemoteEvent, entry, kind, base, identity: dict, state) -> None:
        here = self._on_disk(path, entry)
        if here is not None:
            super()._delete_file(path, here)  # replaced by the change: Unreal again
        self._save_entry(path, entry, e.blob, _known(e.size, e.mtime_ns, e.mode), e.origin, state)
        self.changes.append(
            Change(kind, path, e.blob, base, e.size, e.mtime_ns, e.mode, **identity)
        )
        self.stats.files += 1

    def _delete_file(self, path: str, entry: Entry) -> None:
        here = self._on_disk(path, entry)
        if here is not None:
            super()._delete_file(path, here)

    def _move_file(self, old: str, new: str, source: Entry, target: Entry | None):
        moved, replaced = self._on_disk(old, source), self._on_disk(new, target)
        if moved is not None:
            return super()._move_file(old, new, moved, replaced)
        if replaced is not None:  # an Unreal file moved over a realized one it replaces
            super()._delete_file(new, replaced)
        return _known(source.size, source.mtime_ns, source.mode)

    def _restatus_file(self, path: str, entry: Entry, e: RemoteEvent):
        here = self._on_disk(path, entry)
        if here is not None:
            return super()._restatus_file(path, here, e)
        return _known(entry.size, e.mtime_ns, e.mode)


def applier_for(area: Area, *args) -> Applier:
    """The applier of the area's mode (Applier's arguments after the area)."""
    kind = UnrealApplier if area.mode == Area.Mode.UNREAL else Applier
    return kind(area, *args)
