"""Applying a peer's changes to an Unreal area: the index and the history change as they
would for a Real one, the disk does not. Its files are known by their metadata, their
content fetched when read through the mount (fusemount)."""

import stat
from typing import NamedTuple

from areas.index import Change, RemoteEvent
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

    def _write(self, path, e: RemoteEvent, entry, kind, base, identity: dict, state) -> None:
        self._save_entry(path, entry, e.blob, _known(e.size, e.mtime_ns, e.mode), e.origin, state)
        self.changes.append(
            Change(kind, path, e.blob, base, e.size, e.mtime_ns, e.mode, **identity)
        )
        self.stats.files += 1

    def _delete_file(self, path: str, entry: Entry) -> None:
        pass

    def _move_file(self, old: str, new: str, source: Entry, target: Entry | None) -> _Known:
        return _known(source.size, source.mtime_ns, source.mode)

    def _restatus_file(self, path: str, entry: Entry, e: RemoteEvent) -> _Known:
        return _known(entry.size, e.mtime_ns, e.mode)


def applier_for(area: Area, *args) -> Applier:
    """The applier of the area's mode (Applier's arguments after the area)."""
    kind = UnrealApplier if area.mode == Area.Mode.UNREAL else Applier
    return kind(area, *args)
