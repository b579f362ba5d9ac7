"""An Unreal area becoming Real (areas.lifecycle.set_mode): the mount fetches its Unreal
files onto the disk, one at a time, each checked whole, in a thread of its own; once none
is left, the area's mode changes. A conflict whose resolution keeps an Unreal copy
(areas.conflicts.resolve) gets the copy fetched the same way, then resolved.

The mount does it because it holds the chunk cache and reaches the peers that hold the
content. A file no connected peer can give now is tried again later; the area stays
Unreal (and realizing) until every file is here."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from django.db import DatabaseError, close_old_connections

from areas import conflicts
from areas.files import AreaPaths
from areas.index import VersionGone
from areas.lifecycle import finish_realizing
from areas.models import Area, Conflict, Entry
from areas.register import AreaError
from fusemount.unreal import Chunks, UnrealFile, put_realized_file

log = logging.getLogger(__name__)
# How often the mount looks for areas to realize, and retries files it could not fetch.
EVERY = 5.0
# Files realized between two looks at the database (the area may change meanwhile).
BATCH = 100


class Realizer:
    def __init__(self, chunks: Chunks, realized: Callable[[str], None]) -> None:
        """`realized(area)`: told after files of the area came onto the disk."""
        self.chunks, self.realized = chunks, realized
        self._stop = threading.Event()
        self._failing: set[str] = set()

    def start(self) -> threading.Event:
        threading.Thread(target=self._loop, name="realizer", daemon=True).start()
        return self._stop

    def _loop(self) -> None:
        while not self._stop.wait(EVERY):
            try:
                close_old_connections()
                for name in Area.objects.filter(realizing=True).values_list("name", flat=True):
                    self.realize_some(name)
                waiting = Conflict.objects.filter(resolved_at=None).exclude(resolving="")
                for conflict in waiting.select_related("area"):
                    self.resolve(conflict)
            except DatabaseError as exc:
                log.info("cannot look for areas to realize now: %s", exc)

    def realize_some(self, name: str) -> int:
        """Realize up to BATCH of the area's Unreal files; make it Real if none is left.
        How many came onto the disk."""
        area = Area.objects.filter(name=name, realizing=True).first()
        if area is None:
            return 0
        files = Entry.objects.filter(area=area, blob_hash__isnull=False, inode=0).values_list(
            "path", "blob_hash", "size", "mtime_ns", "mode"
        )[:BATCH]
        paths, done = AreaPaths(area.path), 0
        for path, blob, size, mtime_ns, mode in files:
            if self._stop.is_set():
                break
            file = UnrealFile(bytes(blob), size, mtime_ns, mode)
            try:
                self._realize(area.name, path, file, paths.full(path))
            except VersionGone:
                continue  # changed meanwhile: its new version is taken next time
            except (OSError, TimeoutError) as exc:
                if area.name not in self._failing:
                    log.warning("area %s: cannot realize %s now: %s", area.name, path, exc)
                self._failing.add(area.name)
                break  # no peer gives it now: try again in a while
            done += 1
        if done:
            self._failing.discard(area.name)
            self.realized(area.name)
        if finish_realizing(area.name):
            self.realized(area.name)
        return done

    def resolve(self, conflict: Conflict) -> bool:
        """Fetch the copy a person chose to keep, then carry the choice out; whether it is
        resolved. A copy no peer gives now is tried again later; one changed meanwhile
        leaves the choice to be made again."""
        area = conflict.area
        entry = Entry.objects.filter(
            area=area, path=conflict.copy_path, blob_hash__isnull=False
        ).first()
        full = AreaPaths(area.path).full(conflict.copy_path)
        try:
            if entry is not None and entry.inode == 0:
                file = UnrealFile(bytes(entry.blob_hash), entry.size, entry.mtime_ns, entry.mode)
                self._realize(area.name, conflict.copy_path, file, full)
                self.realized(area.name)
            done = conflicts.resolve(conflict, conflict.resolving, conflict.resolving_name)
        except (OSError, TimeoutError) as exc:
            log.info("conflict at %s: cannot fetch its copy now: %s", conflict.path, exc)
            return False
        except (VersionGone, AreaError) as exc:
            log.warning("conflict at %s: not resolved as chosen: %s", conflict.path, exc)
            Conflict.objects.filter(pk=conflict.pk).update(resolving="", resolving_name="")
            return False
        log.info("conflict at %s: %s", conflict.path, done)
        return True

    def _realize(self, area: str, path: str, file: UnrealFile, full: Path) -> None:
        staged = self.chunks.stage_blob(file, full)
        try:
            put_realized_file(area, path, file.blob, staged)
        finally:
            staged.unlink(missing_ok=True)
