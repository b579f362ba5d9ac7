"""The filesystem: the root lists this peer's areas; each area is its Real, passed through,
and an Unreal area its tree of files known by their metadata beside what its disk holds.

Every call that touches the disk or the database runs in a thread, so a slow disk never
stalls the event loop that serves the other requests. Changes made through the mount are
plain changes of the area's directory: the watcher sees them and records each once, as it
would any program's. Changing an Unreal file makes it Real first (its content fetched and
put on the disk); deleting one records the delete without fetching anything.
"""

import errno
import functools
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyfuse3
import trio

from areas.files import is_ignored
from areas.index import VersionGone
from areas.listing import FileState, describe_state
from areas.models import AREAS_CHANNEL
from fusemount import control, threads
from fusemount.inodes import ROOT, Inodes, Key
from fusemount.metadata import Metadata, parent_of
from fusemount.unreal import (
    Chunks,
    Notices,
    OpenUnreal,
    Reader,
    UnrealFile,
    UnrealTree,
    delete_unreal_file,
    load_tree,
    put_emptied_file,
    put_realized_file,
    unreal_seqs,
)

log = logging.getLogger("realize.mount")

# The kernel keeps names and attributes this long before asking again.
TIMEOUT = 1.0
# Besides when told of a change (unreal.Notices), the list of areas is read from the
# database at most this often.
AREAS_TTL = 1.0
NAME_MAX = 255
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
# `.realize/` (fusemount.control): its inodes' keys are (NO_AREA, ".realize/...").
NO_AREA = ""
CONTROL = control.DIRECTORY
# File handles of `.realize/` files and of Unreal files, above any file descriptor.
CONTROL_HANDLES = 1 << 48
UNREAL_HANDLES = 1 << 49
# An Unreal area's tree is read again when its history moves on: at once when told
# (unreal.Notices), else at least this often; and at most once per UNREAL_GAP.
UNREAL_EVERY = 30.0
UNREAL_GAP = 0.2
# A directory changed on the disk is read again this long after (Filesystem._reread).
REREAD_AFTER = 0.5
REREAD_TRIES = 6


@dataclass
class _Areas:
    paths: dict[str, Path] = field(default_factory=dict)
    unreal: set[str] = field(default_factory=set)
    read_at: float = -1.0


class Filesystem(pyfuse3.Operations):
    """`load_areas()` returns {name: (root directory, mode)}; it runs in a thread."""

    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, load_areas, uid: int | None = None, gid: int | None = None) -> None:
        super().__init__()
        self.load_areas = load_areas
        self.inodes = Inodes()
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        self._areas = _Areas()
        self._reading_areas = False
        self._areas_asked = self._areas_applied = 0  # see _read_areas
        self.nursery: trio.Nursery | None = None  # for work off the request path
        self._lister: dict[int, list[tuple[bytes, pyfuse3.EntryAttributes]]] = {}
        self._next_lister = 1
        self._started = time.time_ns()
        self._made: dict[int, bytes] = {}  # the content of each open `.realize/` file
        self.meta = Metadata(self.inodes)
        self.trees: dict[str, UnrealTree] = {}
        self.reader = Reader(Chunks())
        self._unreal_open: dict[int, OpenUnreal] = {}
        self._next_unreal = UNREAL_HANDLES
        self._open: dict[int, Key] = {}  # the path of each open file (its descriptor)
        self._realizing: dict[Key, trio.Lock] = {}  # one realization of a file at a time
        self._rereading: set[Key] = set()  # directories to read again soon (_reread)
        self._next_made = CONTROL_HANDLES

    # --- where things are ---------------------------------------------------------------------
    async def _area_paths(self, fresh: bool = False) -> dict[str, Path]:
        """The areas, read again once AREAS_TTL old. In the background: a request does
        not wait for the database (after a pause, that wait was most of a first byte),
        except the first, a listing of the root, or a name not known (`fresh`)."""
        if time.monotonic() - self._areas.read_at > AREAS_TTL:
            if fresh or self._areas.read_at < 0 or self.nursery is None:
                await self._read_areas()
            elif not self._reading_areas:
                self._reading_areas = True
                self.nursery.start_soon(self._read_areas)
        return self._areas.paths

    async def _read_areas(self) -> None:
        """Reads may overlap (one told of a change, one a request's): the last asked wins,
        so an older answer that comes in later does not undo a newer one."""
        self._areas_asked += 1
        asked = self._areas_asked
        try:
            paths = await threads.run(self.load_areas)
        except Exception:
            log.warning("cannot read the areas; the list shown may be stale", exc_info=True)
            return
        finally:
            self._reading_areas = False
        if asked < self._areas_applied:
            return
        self._areas_applied = asked
        unreal = {n for n, (_, mode) in paths.items() if mode == "unreal"}
        found = {n: Path(p) for n, (p, _) in paths.items()}
        for name, was in self._areas.paths.items():
            if found.get(name) != was:
                self._forget_area(name)
        self._areas = _Areas(found, unreal, time.monotonic())

    def _forget_area(self, name: str) -> None:
        """An area removed, or added again at another directory under its old name: what
        the mount knew of its old directory must not show as the new one."""
        self.meta.forget_under((name, ""))
        self.inodes.forget_area(name)
        self.trees.pop(name, None)
        self.meta.tell_entry((NO_AREA, ""), name)

    def _is_unreal(self, key: Key) -> bool:
        """Whether the key is in an Unreal area: its files are on the disk, if realized
        (or put there), or else known by their metadata (its tree)."""
        return key[0] in self._areas.unreal

    async def _full(self, key: Key) -> Path:
        """The path on disk of a file (in an Unreal area: where it is, or would be, Real)."""
        area, path = key
        paths = await self._area_paths()
        if area not in paths:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return paths[area] / path if path else paths[area]

    async def _new_full(self, key: Key) -> Path:
        """The path on disk for a name made here: in an Unreal area, its directory may be
        known by its tree alone, and is made on the disk first."""
        full = await self._full(key)
        if self._is_unreal(key) and await self._disk_stat(parent_of(key)) is None:
            await _io(os.makedirs, full.parent, exist_ok=True)
            self.meta.changed(parent_of(key), names=True)
        return full

    async def _disk_stat(self, key: Key) -> os.stat_result | None:
        """In an Unreal area: the path on this disk, or None. Answered from memory where
        a directory above was read: most of such an area is not on the disk at all."""
        if not key[1]:
            return await self._real_stat(key)
        parent = parent_of(key)
        if parent not in self.meta.listings:
            if await self._disk_stat(parent) is None:
                return None
            try:
                await self._read_directory(parent)
            except pyfuse3.FUSEError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    return None
                raise
        names = self.meta.listings.get(parent)
        if names is not None and key[1].rpartition("/")[2] not in names:
            return None
        try:
            return await self._real_stat(key)
        except pyfuse3.FUSEError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise

    async def _unreal_file(self, key: Key) -> UnrealFile | None:
        """The Unreal file at the key: in an Unreal area's tree, and not on this disk."""
        if not self._is_unreal(key) or not key[1]:
            return None
        file = (await self._unreal_tree(key[0])).files.get(key[1])
        if file is None or await self._disk_stat(key) is not None:
            return None
        return file

    def _key(self, inode: int) -> Key:
        key = self.inodes.key(inode)
        if key is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return key

    def _child(self, parent: int, name: bytes) -> Key:
        """The key of `name` in directory `parent` (inside an area)."""
        if len(name) > NAME_MAX:
            raise pyfuse3.FUSEError(errno.ENAMETOOLONG)
        text = os.fsdecode(name)
        if text in (".", "..") or "/" in text:
            raise pyfuse3.FUSEError(errno.EINVAL)
        area, path = self._key(parent)
        if not area:
            raise pyfuse3.FUSEError(errno.EPERM)  # the root holds only the areas
        if is_ignored(text):
            raise pyfuse3.FUSEError(errno.ENOENT)  # Realize's own temporary files
        return area, f"{path}/{text}" if path else text

    # --- attributes -----------------------------------------------------------------------------
    def _attributes(self, inode: int, st: os.stat_result) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.generation = 0
        a.entry_timeout = TIMEOUT
        a.attr_timeout = TIMEOUT
        a.st_mode = st.st_mode
        a.st_nlink = st.st_nlink
        a.st_uid = st.st_uid
        a.st_gid = st.st_gid
        a.st_rdev = 0
        a.st_size = st.st_size
        a.st_blksize = st.st_blksize
        a.st_blocks = st.st_blocks
        a.st_atime_ns = st.st_atime_ns
        a.st_mtime_ns = st.st_mtime_ns
        a.st_ctime_ns = st.st_ctime_ns
        return a

    def _made_attributes(
        self, inode: int, mode: int, size: int = 0, links: int = 1
    ) -> pyfuse3.EntryAttributes:
        """The attributes of the root and of `.realize/`, which are made, not on disk."""
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.entry_timeout = TIMEOUT
        a.attr_timeout = TIMEOUT
        a.st_mode = mode
        a.st_nlink = links
        a.st_uid, a.st_gid = self.uid, self.gid
        a.st_size = size
        a.st_blksize = 4096
        a.st_blocks = (size + 511) // 512
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = time.time_ns()
        return a

    def _root_attributes(self, count: int) -> pyfuse3.EntryAttributes:
        return self._made_attributes(ROOT, stat.S_IFDIR | 0o755, links=2 + count)

    async def _control_attributes(self, key: Key) -> pyfuse3.EntryAttributes:
        """`.realize` or a file or directory in it (key: (NO_AREA, ".realize/...")."""
        inner = key[1][len(CONTROL) + 1 :]
        if await threads.run(control.listing, inner) is not None:
            mode = stat.S_IFDIR | 0o555
            return self._made_attributes(self.inodes.number(key), mode, links=2)
        content = await threads.run(control.render, inner, self.reader.chunks.size)
        if content is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        mode = stat.S_IFREG | 0o444
        return self._made_attributes(self.inodes.number(key), mode, len(content))

    @staticmethod
    def _is_control(key: Key) -> bool:
        return key[0] == NO_AREA and (key[1] == CONTROL or key[1].startswith(CONTROL + "/"))

    async def _unreal_tree(self, area: str) -> UnrealTree:
        tree = self.trees.get(area)
        if tree is None:
            tree = self.trees[area] = await threads.run(load_tree, area)
        return tree

    async def _unreal_attributes(self, key: Key) -> pyfuse3.EntryAttributes:
        tree = await self._unreal_tree(key[0])
        number = self.inodes.number(key) if key[1] in tree.dirs or key[1] in tree.files else 0
        if key[1] in tree.dirs:
            return self._made_attributes(number, stat.S_IFDIR | 0o755, links=2)
        file = tree.files.get(key[1])
        if file is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        a = self._made_attributes(number, stat.S_IFREG | (file.mode & 0o777), file.size)
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = file.mtime_ns
        return a

    async def _stat(self, key: Key) -> pyfuse3.EntryAttributes:
        if self._is_unreal(key):
            st = await self._disk_stat(key)
            if st is None:
                return await self._unreal_attributes(key)
        else:
            st = await self._real_stat(key)
        return self._attributes(self.inodes.number(key), st)

    async def _real_stat(self, key: Key) -> os.stat_result:
        st = self.meta.stats.get(key)
        return st if st is not None else await self._read_stat(key)

    async def _read_stat(self, key: Key) -> os.stat_result:
        """A name not known in memory: its directory is read whole (so its neighbours are
        known next), or the name alone when the directory cannot be kept."""
        if key[1]:
            parent = parent_of(key)
            if parent not in self.meta.listings:
                await self._read_directory(parent)
            st = self.meta.stats.get(key)
            if st is not None:
                return st
            names = self.meta.listings.get(parent)
            if names is not None and key[1].rpartition("/")[2] not in names:
                raise pyfuse3.FUSEError(errno.ENOENT)  # whole and current: not there
            since = self.meta.events_taken
            st = await _io(os.lstat, await self._full(key))
            self.meta.remember_stat(key, st, since)
            return st
        since = self.meta.events_taken  # an area's own directory: kept while it is watched
        st = await _io(os.lstat, await self._full(key))
        self.meta.remember_stat(key, st, since)
        return st

    async def _read_directory(self, key: Key) -> list[tuple[str, os.stat_result]]:
        full = await self._full(key)
        since = self.meta.events_taken
        wd, found = await _io(self.meta.read_directory, full)
        self.meta.remember(key, wd, found, since)
        return found

    async def watch_changes(self) -> None:
        """Keep the metadata current: runs as long as the mount."""
        while True:
            await trio.lowlevel.wait_readable(self.meta.inotify.fd)
            try:
                self.meta.take_events()
            except Exception:  # the mount must outlive one bad event
                log.exception("applying inotify events failed: everything is read again")
                self.meta.stats.clear()
                self.meta.listings.clear()
            for key in self.meta.take_changed_directories() - self._rereading:
                if self.nursery is not None:
                    self._rereading.add(key)
                    self.nursery.start_soon(self._reread, key)

    async def _reread(self, key: Key) -> None:
        """A directory changed, read again REREAD_AFTER later (once a burst of changes is
        likely over), with its own attributes, so the next request finds them in memory:
        after a pause, reading them from the disk took 5-10 ms of a lookup. A read that
        raced a change is not kept (Metadata.remember): tried again, REREAD_TRIES times."""
        try:
            for _ in range(REREAD_TRIES):
                await trio.sleep(REREAD_AFTER)
                if key not in self.meta.listings:
                    await self._read_directory(key)
                if key in self.meta.listings and key not in self.meta.stats:
                    await self._read_stat(key)
                if key in self.meta.listings and key in self.meta.stats:
                    return
        except pyfuse3.FUSEError:
            pass  # gone, or its area: the next request learns it
        except Exception:  # the mount must outlive it: the next request reads it
            log.exception("reading %s:%s again failed", *key)
        finally:
            self._rereading.discard(key)

    async def watch_database(self) -> None:
        """Read the areas again as soon as they change (one removed and added again
        elsewhere must not show its old directory), and an Unreal area's tree when its
        history moved on (a consensus brought changes). What changed is forgotten by the
        kernel; a file with new content gets a new inode number (see fusemount.metadata)."""
        notices = Notices()  # its thread is abandoned, not waited for, at unmount
        came = Notices.CHANNELS
        while True:
            try:
                if AREAS_CHANNEL in came:
                    await self._read_areas()
                await self._refresh_unreal()
            except Exception:  # the database away: try again later
                log.warning("cannot read the areas' state", exc_info=True)
            await trio.sleep(UNREAL_GAP)
            came = await trio.to_thread.run_sync(notices.wait, UNREAL_EVERY, abandon_on_cancel=True)

    def unreal_stale(self, area: str) -> None:
        """The area's Unreal files changed behind the tree (realized): read it again at the
        next refresh. Called from any thread."""
        tree = self.trees.get(area)
        if tree is not None:
            tree.seq = -1

    async def _refresh_unreal(self) -> None:
        """Each Unreal area's tree read again if its history moved on, or read now if not
        yet: the first lookup in it after a consensus then waits for no query."""
        for area, seq in (await threads.run(unreal_seqs)).items():
            old = self.trees.get(area)
            if old is None or old.seq != seq:
                new = await threads.run(load_tree, area)
                self.trees[area] = new
                if old is not None:
                    self._forget_changes(area, old, new)

    def _forget_changes(self, area: str, old: UnrealTree, new: UnrealTree) -> None:
        for path in {*old.files, *new.files, *old.dirs, *new.dirs}:
            was, now = old.files.get(path), new.files.get(path)
            if was == now and (path in old.dirs) == (path in new.dirs):
                continue
            key = (area, path)
            if was is not None and (now is None or now.blob != was.blob):
                self.inodes.deleted(key)
            parent, _, name = path.rpartition("/")
            if name:
                self.meta.tell_entry((area, parent), name)
            self.meta.tell_inode((area, parent))

    async def getattr(self, inode, ctx=None):
        if inode == ROOT:
            return self._root_attributes(len(await self._area_paths()))
        key = self._key(inode)
        if self._is_control(key):
            return await self._control_attributes(key)
        return await self._stat(key)

    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode == ROOT:
            text = os.fsdecode(name)
            if text == CONTROL:
                return await self._control_attributes((NO_AREA, CONTROL))
            if text not in await self._area_paths() and text not in await self._area_paths(
                fresh=True
            ):
                raise pyfuse3.FUSEError(errno.ENOENT)
            return await self._stat((text, ""))
        parent = self._key(parent_inode)
        if self._is_control(parent):
            if len(name) > NAME_MAX:
                raise pyfuse3.FUSEError(errno.ENAMETOOLONG)
            return await self._control_attributes((NO_AREA, f"{parent[1]}/{os.fsdecode(name)}"))
        return await self._stat(self._child(parent_inode, name))

    async def forget(self, inode_list):
        pass  # numbers live as long as the mount (see fusemount.inodes)

    async def setattr(self, inode, attr, fields, fh, ctx):
        key = self._key(inode)
        if not key[0]:
            raise pyfuse3.FUSEError(errno.EPERM)
        await self._realize(key, emptied=bool(fields.update_size and attr.st_size == 0))
        full = await self._full(key)
        self.meta.expect(key)

        def change() -> None:
            if fields.update_size:
                if fh is not None:
                    os.ftruncate(fh, attr.st_size)
                else:
                    os.truncate(full, attr.st_size)
            if fields.update_mode:
                if stat.S_ISLNK(os.lstat(full).st_mode):
                    raise OSError(errno.EOPNOTSUPP, "a symlink has no mode of its own")
                os.chmod(full, stat.S_IMODE(attr.st_mode))
            if fields.update_uid or fields.update_gid:
                uid = attr.st_uid if fields.update_uid else -1
                gid = attr.st_gid if fields.update_gid else -1
                os.lchown(full, uid, gid)
            if fields.update_atime or fields.update_mtime:
                now = os.lstat(full)
                atime = attr.st_atime_ns if fields.update_atime else now.st_atime_ns
                mtime = attr.st_mtime_ns if fields.update_mtime else now.st_mtime_ns
                os.utime(full, ns=(atime, mtime), follow_symlinks=False)

        try:
            await _io(change)
        finally:
            self.meta.changed(key)
        return await self._stat(key)

    # --- directories ----------------------------------------------------------------------------
    async def opendir(self, inode, ctx):
        key = self._key(inode)
        if inode == ROOT:
            areas = await self._area_paths(fresh=True)
            found = [(CONTROL.encode(), await self._control_attributes((NO_AREA, CONTROL)))]
            for name in sorted(areas):
                try:
                    found.append((os.fsencode(name), await self._stat((name, ""))))
                except pyfuse3.FUSEError:
                    continue  # an area whose directory is gone: not listed
        elif self._is_unreal(key):
            found = await self._union_listing(key)
        elif self._is_control(key):
            inner = key[1][len(CONTROL) + 1 :]
            names = await threads.run(control.listing, inner) or []
            found = []
            for name in names:
                child = (NO_AREA, f"{key[1]}/{name}")
                try:
                    found.append((os.fsencode(name), await self._control_attributes(child)))
                except pyfuse3.FUSEError:
                    continue  # gone since listed
        else:
            listed = self.meta.listed(key)
            if listed is None:
                listed = await self._read_directory(key)
            found = []
            for name, st in listed:
                if is_ignored(name):
                    continue
                child = (key[0], f"{key[1]}/{name}" if key[1] else name)
                found.append((os.fsencode(name), self._attributes(self.inodes.number(child), st)))
        handle = self._next_lister
        self._next_lister += 1
        self._lister[handle] = found
        return handle

    async def _union_listing(self, key: Key) -> list[tuple[bytes, pyfuse3.EntryAttributes]]:
        """An Unreal area's directory: what its disk holds (realized files, and any made
        here), and its tree's Unreal names beside."""
        tree = await self._unreal_tree(key[0])
        shown: dict[str, pyfuse3.EntryAttributes] = {}
        if await self._disk_stat(key) is not None:
            listed = self.meta.listed(key)
            if listed is None:
                listed = await self._read_directory(key)
            for name, st in listed:
                if not is_ignored(name):
                    child = (key[0], f"{key[1]}/{name}" if key[1] else name)
                    shown[name] = self._attributes(self.inodes.number(child), st)
        elif key[1] not in tree.dirs:
            raise pyfuse3.FUSEError(errno.ENOENT)
        for name in tree.dirs.get(key[1], []):
            if name not in shown:
                child = (key[0], f"{key[1]}/{name}" if key[1] else name)
                shown[name] = await self._unreal_attributes(child)
        return [(os.fsencode(name), shown[name]) for name in sorted(shown)]

    async def readdir(self, fh, start_id, token):
        entries = self._lister.get(fh, [])
        for i in range(start_id, len(entries)):
            name, attributes = entries[i]
            if not pyfuse3.readdir_reply(token, name, attributes, i + 1):
                break

    async def releasedir(self, fh):
        self._lister.pop(fh, None)

    async def mkdir(self, parent_inode, name, mode, ctx):
        key = self._child(parent_inode, name)
        full = await self._new_full(key)
        self.meta.expect(key)
        await _io(os.mkdir, full, stat.S_IMODE(mode) & ~ctx.umask)
        self.meta.changed(key, names=True)
        return await self._stat(key)

    async def rmdir(self, parent_inode, name, ctx):
        key = self._child(parent_inode, name)
        if self._is_unreal(key) and key[1] in (await self._unreal_tree(key[0])).dirs:
            raise pyfuse3.FUSEError(errno.ENOTEMPTY)  # Unreal files are in it
        self.meta.expect(key)
        await _io(os.rmdir, await self._full(key))
        self.meta.forget_under(key)
        self.meta.changed(key, names=True)
        self.inodes.deleted(key)

    # --- files ----------------------------------------------------------------------------------
    async def open(self, inode, flags, ctx):
        key = self._key(inode)
        if self._is_control(key):
            return await self._open_control(key, flags)
        writing = flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC
        file = await self._unreal_file(key)
        if file is not None and not writing:
            return await self._open_unreal(file)
        if file is not None:  # then written as the Real file it now is
            await self._realize(key, emptied=bool(flags & os.O_TRUNC))
        if not key[0]:
            raise pyfuse3.FUSEError(errno.EISDIR)
        full = await self._full(key)
        if writing:
            self.meta.expect(key)
        fd = await _io(_open_for_cache, full, flags & ~(os.O_CREAT | os.O_EXCL))
        self._open[fd] = key
        if flags & os.O_TRUNC:
            self.meta.changed(key)
        # A file read keeps its pages in the kernel's cache from one open to the next: one
        # changed from outside comes back under a new inode number (fusemount.metadata).
        return pyfuse3.FileInfo(fh=fd, keep_cache=not writing)

    async def create(self, parent_inode, name, mode, flags, ctx):
        key = self._child(parent_inode, name)
        full = await self._new_full(key)
        self.meta.expect(key)
        fd = await _io(_open_for_cache, full, flags | os.O_CREAT, stat.S_IMODE(mode))
        self._open[fd] = key
        self.meta.changed(key, names=True)
        try:
            st = await _io(os.fstat, fd)
        except BaseException:
            self._open.pop(fd, None)
            os.close(fd)
            raise
        return pyfuse3.FileInfo(fh=fd), self._attributes(self.inodes.number(key), st)

    async def _open_control(self, key: Key, flags: int) -> pyfuse3.FileInfo:
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise pyfuse3.FUSEError(errno.EACCES)
        inner = key[1][len(CONTROL) + 1 :]
        content = await threads.run(control.render, inner, self.reader.chunks.size)
        if content is None:
            raise pyfuse3.FUSEError(errno.EISDIR)
        handle = self._next_made
        self._next_made += 1
        self._made[handle] = content
        # Made anew at each open: its size may differ from the last stat's.
        return pyfuse3.FileInfo(fh=handle, direct_io=True)

    async def _realize(self, key: Key, emptied: bool = False) -> None:
        """Make an Unreal file Real before it is changed: its content fetched, checked, and
        put at its path (areas.index.put_realized); or, `emptied` (about to be written over
        from nothing), an empty file put there, nothing fetched (put_emptied). Nothing if it
        is not Unreal. EIO when some chunk cannot be had; EAGAIN when its area stays busy
        or a peer's change came meanwhile. Either way the file stays as it was."""
        if not self._is_unreal(key):
            return
        lock = self._realizing.setdefault(key, trio.Lock())
        try:
            async with lock:
                file = await self._unreal_file(key)
                if file is None:
                    return  # Real already (realized by the request before this one)
                full = await self._new_full(key)
                if emptied:
                    self.meta.expect(key)
                    await self._put_realized(key, put_emptied_file, file.blob, file.mode & 0o7777)
                else:
                    try:
                        staged = await threads.run(self.reader.chunks.stage_blob, file, full)
                    except OSError as exc:
                        log.warning("cannot realize %s:%s: %s", *key, exc)
                        raise pyfuse3.FUSEError(errno.EIO) from None
                    self.meta.expect(key)
                    try:
                        await self._put_realized(key, put_realized_file, file.blob, staged)
                    finally:
                        staged.unlink(missing_ok=True)  # put in place, or not to be
                (await self._unreal_tree(key[0])).drop(key[1])
                self.meta.changed(key, names=True)
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._realizing.pop(key, None)

    async def _put_realized(self, key: Key, put, *args) -> None:
        try:
            await threads.run(put, *key, *args)
        except (VersionGone, TimeoutError) as exc:
            log.info("cannot realize %s:%s now: %s", *key, exc)
            raise pyfuse3.FUSEError(errno.EAGAIN) from None
        except OSError as exc:  # its staged copy cleaned away by a pull, say
            log.warning("cannot realize %s:%s: %s", *key, exc)
            raise pyfuse3.FUSEError(errno.EIO) from None

    def _forget_name(self, key: Key) -> None:
        self.meta.changed(key, names=True)
        self.inodes.deleted(key)

    async def _open_unreal(self, file: UnrealFile) -> pyfuse3.FileInfo:
        handle = self._next_unreal
        self._next_unreal += 1
        self._unreal_open[handle] = OpenUnreal(file)
        self.reader.chunks.opened(file.blob)
        return pyfuse3.FileInfo(fh=handle, keep_cache=True)

    async def read(self, fh, off, size):
        if fh >= UNREAL_HANDLES:
            opened = self._unreal_open.get(fh)
            if opened is None:
                raise pyfuse3.FUSEError(errno.EBADF)
            return await self.reader.read(opened, off, size)
        if fh >= CONTROL_HANDLES:
            return self._made.get(fh, b"")[off : off + size]
        return await _io(os.pread, fh, size, off)

    async def write(self, fh, off, buf):
        key = self._open.get(fh)
        if key is not None:
            self.meta.expect(key)
        written = await _io(os.pwrite, fh, buf, off)
        if key is not None:
            self.meta.changed(key)
        return written

    async def flush(self, fh):
        pass

    async def fsync(self, fh, datasync):
        if fh < CONTROL_HANDLES:
            await _io(os.fdatasync if datasync else os.fsync, fh)

    async def release(self, fh):
        if fh >= UNREAL_HANDLES:
            opened = self._unreal_open.pop(fh, None)
            if opened is not None:
                self.reader.chunks.opened(opened.file.blob, -1)
            return
        if fh >= CONTROL_HANDLES:
            self._made.pop(fh, None)
            return
        self._open.pop(fh, None)
        await _io(os.close, fh)

    async def unlink(self, parent_inode, name, ctx):
        key = self._child(parent_inode, name)
        file = await self._unreal_file(key)
        if file is not None:  # never here: its delete is recorded as a scan would
            try:
                await threads.run(delete_unreal_file, *key, file.blob)
            except (VersionGone, TimeoutError) as exc:
                log.info("cannot delete %s:%s now: %s", *key, exc)
                raise pyfuse3.FUSEError(errno.EAGAIN) from None
            (await self._unreal_tree(key[0])).drop(key[1])
            self._forget_name(key)
            return
        self.meta.expect(key)
        await _io(os.unlink, await self._full(key))
        self.meta.changed(key, names=True)
        self.inodes.deleted(key)

    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        if flags & RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        old, new = self._child(parent_inode_old, name_old), self._child(parent_inode_new, name_new)
        if old[0] != new[0]:
            raise pyfuse3.FUSEError(errno.EXDEV)  # areas are synced apart: copy instead
        if self._is_unreal(old):
            tree = await self._unreal_tree(old[0])
            if tree.holds_unreal_under(old[1]):
                log.info("refused to rename %s:%s: Unreal files are in it", *old)
                raise pyfuse3.FUSEError(errno.EPERM)
            if flags & RENAME_NOREPLACE and await self._unreal_file(new) is not None:
                raise pyfuse3.FUSEError(errno.EEXIST)
            await self._realize(old)  # then moved as the Real file it now is
        old_full, new_full = await self._full(old), await self._new_full(new)
        self.meta.expect(old, new)

        def move() -> None:
            if flags & RENAME_NOREPLACE and os.path.lexists(new_full):
                raise OSError(errno.EEXIST, "exists")
            os.rename(old_full, new_full)

        await _io(move)
        if self._is_unreal(new):  # an Unreal file there is replaced
            (await self._unreal_tree(new[0])).drop(new[1])
        self.meta.moved(old, new)
        self.inodes.renamed(old, new)

    async def symlink(self, parent_inode, name, target, ctx):
        key = self._child(parent_inode, name)
        full = await self._new_full(key)
        self.meta.expect(key)
        await _io(os.symlink, os.fsdecode(target), full)
        self.meta.changed(key, names=True)
        return await self._stat(key)

    async def readlink(self, inode, ctx):
        return os.fsencode(await _io(os.readlink, await self._full(self._key(inode))))

    async def link(self, inode, new_parent_inode, new_name, ctx):
        # A file at two paths would sync as two files: refused.
        log.info("refused a hard link: Realize keeps one path per file")
        raise pyfuse3.FUSEError(errno.EPERM)

    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        raise pyfuse3.FUSEError(errno.EPERM)  # only files, directories and symlinks sync

    async def access(self, inode, mode, ctx):
        return True  # default_permissions: the kernel checks the mode bits

    async def statfs(self, ctx):
        areas = await self._area_paths()
        where = next(iter(areas.values()), Path("/"))
        st = await _io(os.statvfs, where)
        s = pyfuse3.StatvfsData()
        s.f_bsize, s.f_frsize = st.f_bsize, st.f_frsize
        s.f_blocks, s.f_bfree, s.f_bavail = st.f_blocks, st.f_bfree, st.f_bavail
        s.f_files, s.f_ffree, s.f_favail = st.f_files, st.f_ffree, st.f_favail
        s.f_namemax = NAME_MAX
        return s

    # --- extended attributes --------------------------------------------------------------------
    async def getxattr(self, inode, name, ctx):
        if not name.startswith(b"user."):
            # ACLs and security labels are not synced, so not kept: said as "not supported",
            # which `ls -l` remembers for the whole mount, where "none here" sent it back for
            # each file (two trips per file, most of the time of an `ls -lR`).
            raise pyfuse3.FUSEError(errno.ENOTSUP)
        key = self._key(inode)
        if not key[0] or not key[1] or self._is_control(key):
            raise pyfuse3.FUSEError(errno.ENODATA)
        file = await self._unreal_file(key)
        if file is None and self._is_unreal(key) and await self._disk_stat(key) is None:
            raise pyfuse3.FUSEError(errno.ENODATA)  # a directory of the tree
        if name == control.STATUS_XATTR:
            if await threads.run(control.in_conflict, *key):
                return describe_state(FileState.CONFLICT).encode()
            if file is None:
                return describe_state(FileState.REAL).encode()
            cached = await threads.run(self.reader.chunks.cached_share, file)
            return describe_state(FileState.UNREAL, cached).encode()
        if name == control.WHERE_XATTR:
            return await threads.run(self._where, key, file)
        if file is not None:
            raise pyfuse3.FUSEError(errno.ENODATA)
        return await _io(os.getxattr, await self._full(key), name, follow_symlinks=False)

    def _where(self, key: Key, file: UnrealFile | None) -> bytes:
        """`user.realize.where` (in a thread: it asks the connected peers)."""
        blob = file.blob if file is not None else control.indexed_blob(*key)
        if blob is None:  # a Real file not indexed yet: only here
            return control.where(key[0], True, [], self.reader.chunks.refresh_connected())
        connected, holders = self.reader.chunks.holders(blob)
        return control.where(key[0], file is None, holders, connected)

    async def listxattr(self, inode, ctx):
        key = self._key(inode)
        if not key[0] or self._is_control(key):
            return []
        if await self._unreal_file(key) is not None:
            return list(control.XATTRS)
        if self._is_unreal(key) and await self._disk_stat(key) is None:
            return []  # a directory of the tree
        names = await _io(os.listxattr, await self._full(key), follow_symlinks=False)
        own = list(control.XATTRS) if key[1] else []
        return own + [os.fsencode(n) for n in names if n.startswith("user.")]

    async def setxattr(self, inode, name, value, ctx):
        key = self._key(inode)
        if not key[0] or name.startswith(b"user.realize."):
            raise pyfuse3.FUSEError(errno.EPERM)
        await _io(os.setxattr, await self._full(key), name, value, follow_symlinks=False)

    async def removexattr(self, inode, name, ctx):
        key = self._key(inode)
        if not key[0] or name.startswith(b"user.realize."):
            raise pyfuse3.FUSEError(errno.EPERM)
        await _io(os.removexattr, await self._full(key), name, follow_symlinks=False)


def _guarded(method):
    """A request that fails in an unforeseen way gets EIO; the mount serves on."""

    @functools.wraps(method)
    async def guarded(self, *args):
        try:
            return await method(self, *args)
        except pyfuse3.FUSEError:
            raise
        except Exception:
            log.exception("%s failed", method.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return guarded


for _name, _method in list(vars(Filesystem).items()):
    if _name in vars(pyfuse3.Operations) and not _name.startswith("_"):
        setattr(Filesystem, _name, _guarded(_method))


def _open_for_cache(full: Path, flags: int, mode: int = 0o777) -> int:
    """Open a Real file as the kernel's writeback cache needs it (libfuse turns that cache
    on): it reads pages around a partial write, so a file opened write-only is opened
    read-write where allowed; and it appends itself, so O_APPEND is left out."""
    flags = (flags & ~os.O_APPEND) | os.O_NOFOLLOW
    if flags & os.O_ACCMODE == os.O_WRONLY:
        try:
            return os.open(full, (flags & ~os.O_ACCMODE) | os.O_RDWR, mode)
        except PermissionError:
            pass  # readable by no one it runs as: a partial write may fail (EBADF)
    return os.open(full, flags, mode)


async def _io(function, *args, **kwargs):
    """Run a disk call in a thread; its OSError becomes the errno the caller gets."""
    try:
        return await trio.to_thread.run_sync(lambda: function(*args, **kwargs))
    except OSError as exc:
        raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
