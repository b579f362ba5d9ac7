"""What the disk says of the areas' files, kept in memory and current by inotify.

A request that waits on a thread costs far more than the stat it asks for, so a directory
is read whole the first time one of its names is asked for (in a thread), then its names
and attributes are answered from memory. Each directory read is watched; a change there,
by the mount or by anyone else, drops what it changed, and the kernel is told to forget its
own copy (from a thread of its own: telling it from a request could deadlock).
"""

import errno
import logging
import os
import queue
import stat
import threading
import time
from pathlib import Path

import pyfuse3

from areas.watch.inotify import (
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Inotify,
)
from fusemount.inodes import Inodes, Key

log = logging.getLogger("realize.mount")

NAMES_CHANGED = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
NEW_FILE = IN_CREATE | IN_MOVED_TO
# An event on a path the mount changed this recently is taken for the mount's own.
OURS_FOR = 0.5
# A directory changed is read again in the background if it had at most this many names
# (a larger one is read when next asked for: reading it after every burst costs too much).
REREAD_MOST = 1000


def parent_of(key: Key) -> Key:
    area, path = key
    return area, path.rpartition("/")[0]


def child_of(key: Key, name: str) -> Key:
    return key[0], f"{key[1]}/{name}" if key[1] else name


class Metadata:
    def __init__(self, inodes: Inodes) -> None:
        self.inodes = inodes
        self.stats: dict[Key, os.stat_result] = {}
        self.listings: dict[Key, list[str]] = {}  # a directory's names, whole and sorted
        self._watches: dict[int, Key] = {}
        self._watched: dict[Key, int] = {}
        self.inotify = Inotify()
        # Events taken so far, and the count when each watch last had one: a directory read
        # while one of its events was taken is not kept (it may predate the change).
        self.events_taken = 0
        self._last_event: dict[int, int] = {}
        self._ours: dict[Key, float] = {}  # when the mount last changed each path
        self.changed_directories: set[Key] = set()
        self._tell: queue.SimpleQueue = queue.SimpleQueue()
        self._teller = threading.Thread(target=self._tell_kernel, daemon=True, name="invalidate")
        self._teller.start()

    # --- reading a directory (in a thread) -----------------------------------------------------
    def read_directory(self, full: Path) -> tuple[int | None, list[tuple[str, os.stat_result]]]:
        """Watch a directory, then list it with every name's attributes (in that order, so
        nothing changed between is missed). The watch is None when none can be had."""
        try:
            wd = self.inotify.add(str(full))
        except OSError as exc:  # out of watches: served, but not from memory
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise
            log.warning("cannot watch %s (%s): its names are read each time", full, exc)
            wd = None
        found = []
        with os.scandir(full) as entries:
            for entry in entries:
                try:
                    found.append((entry.name, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # gone while listed
        found.sort(key=lambda item: item[0])
        return wd, found

    def remember(
        self, key: Key, wd: int | None, found: list[tuple[str, os.stat_result]], since: int
    ) -> None:
        """A directory read (read_directory) that began when `events_taken` was `since`:
        kept if it is watched, and no event of it came while it was read."""
        if wd is None or self._last_event.get(wd, -1) > since:
            return
        self._watches[wd] = key
        self._watched[key] = wd
        self.listings[key] = [name for name, _ in found]
        for name, st in found:
            self.stats[child_of(key, name)] = st

    def remember_stat(self, key: Key, st: os.stat_result, since: int) -> None:
        """A name's attributes read alone: kept if its directory is watched and had no
        event while they were read."""
        wd = self._watched.get(parent_of(key))
        if wd is not None and self._last_event.get(wd, -1) <= since:
            self.stats[key] = st

    def listed(self, key: Key) -> list[tuple[str, os.stat_result]] | None:
        """A directory's names and attributes, if all are known."""
        names = self.listings.get(key)
        if names is None:
            return None
        found = []
        for name in names:
            st = self.stats.get(child_of(key, name))
            if st is None:
                return None
            found.append((name, st))
        return found

    # --- changes ---------------------------------------------------------------------------------
    def expect(self, *keys: Key) -> None:
        """The mount is about to change these paths: their events are its own."""
        now = time.monotonic()
        for key in keys:
            self._ours[key] = now

    def changed(self, key: Key, names: bool = False) -> None:
        """The mount changed `key` itself: forget its attributes (and, when a name came or
        went, its directory's listing and attributes) before the next request."""
        self._ours[key] = time.monotonic()
        self.stats.pop(key, None)
        if names:
            parent = parent_of(key)
            self.listings.pop(parent, None)
            self.stats.pop(parent, None)

    def moved(self, old: Key, new: Key) -> None:
        self.forget_under(old)
        self.changed(old, names=True)
        self.changed(new, names=True)

    def forget_under(self, key: Key) -> None:
        """A directory moved or removed (or a whole area, at its own directory): what is
        known of it and under it is dropped, and its watches with it (a watch follows the
        directory, not its path)."""
        area, path = key
        prefix = path + "/" if path else ""  # an area's own directory: all of the area
        inside = [k for k in self._watched if k[0] == area and (k[1] + "/").startswith(prefix)]
        for k in inside:
            wd = self._watched.pop(k)
            self._watches.pop(wd, None)
            self.inotify.remove(wd)
            self.listings.pop(k, None)
        for k in [k for k in self.stats if k[0] == area and k[1].startswith(prefix)]:
            del self.stats[k]
        self.stats.pop(key, None)

    def take_events(self) -> None:
        """Apply every inotify event waiting: what they changed is forgotten, here and in
        the kernel."""
        for event in self.inotify.read():
            self.events_taken += 1
            self._last_event[event.wd] = self.events_taken
            if event.mask & IN_Q_OVERFLOW:
                log.warning("inotify overflowed: everything is read again")
                self.stats.clear()
                self.listings.clear()
                continue
            directory = self._watches.get(event.wd)
            if directory is None:
                continue
            if event.mask & IN_IGNORED:  # the directory is gone
                self._watches.pop(event.wd, None)
                self._last_event.pop(event.wd, None)
                self._watched.pop(directory, None)
                self.listings.pop(directory, None)
                self.stats.pop(directory, None)
                continue
            if not event.name:  # the directory itself
                self.stats.pop(directory, None)
                self.tell_inode(directory)
                self._changed_directory(directory)
                continue
            key = child_of(directory, event.name)
            was = self.stats.pop(key, None)
            if not self._is_ours(key) and self._renumber(key, event.mask, was):
                # The kernel keeps a file's size and times as its own (it caches writes):
                # a file changed from outside is a new file to it, under a new number.
                self.inodes.deleted(key)
                self.tell_entry(directory, event.name)
            if event.mask & NAMES_CHANGED:
                if was is not None and stat.S_ISDIR(was.st_mode) and event.mask & IN_MOVED_FROM:
                    self.forget_under(key)
                self._changed_directory(directory)
                self.listings.pop(directory, None)
                self.stats.pop(directory, None)
                self.tell_entry(directory, event.name)
                self.tell_inode(directory)
            else:
                self.tell_inode(key, data=True)

    def _changed_directory(self, key: Key) -> None:
        listing = self.listings.get(key)
        if len(listing or ()) <= REREAD_MOST:
            self.changed_directories.add(key)

    def take_changed_directories(self) -> set[Key]:
        """The directories whose names or attributes events dropped since the last call,
        but those of over REREAD_MOST names: to be read again off the request path."""
        found, self.changed_directories = self.changed_directories, set()
        return found

    def _is_ours(self, key: Key) -> bool:
        at = self._ours.get(key)
        if at is None:
            return False
        if time.monotonic() - at > OURS_FOR:
            del self._ours[key]
            return False
        return True

    def _renumber(self, key: Key, mask: int, was: os.stat_result | None) -> bool:
        """Whether the event made the path a new file to the kernel: its content or times
        changed, or another file came there."""
        if mask & NEW_FILE:
            return self.inodes.known(key) is not None
        if mask & NAMES_CHANGED:
            return False
        return was is None or stat.S_ISREG(was.st_mode)

    # --- the kernel ------------------------------------------------------------------------------
    def tell_inode(self, key: Key, data: bool = False) -> None:
        number = self.inodes.known(key)
        if number is not None:
            self._tell.put(("inode", number, data))

    def tell_entry(self, directory: Key, name: str) -> None:
        number = self.inodes.known(directory)
        if number is not None:
            self._tell.put(("entry", number, os.fsencode(name)))

    def _tell_kernel(self) -> None:
        while True:
            what, number, arg = self._tell.get()
            try:
                if what == "inode":
                    pyfuse3.invalidate_inode(number, attr_only=not arg)
                else:
                    pyfuse3.invalidate_entry(number, arg)
            except OSError:
                pass  # the kernel did not know it: nothing to forget
            except Exception:
                log.exception("telling the kernel to forget %s failed", number)

    def close(self) -> None:
        self.inotify.close()
