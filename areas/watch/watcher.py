"""Watching the Real (inside peerd): scan an area once quiet, then start consensus.

At once after a delete or rename; after the area's rest period for creates and edits."""

import asyncio
import logging
import os
import time

from django.conf import settings

import areas.watch.inotify as inotify
from areas.files import is_ignored, staging_path
from areas.index import Kind, ScanResult, scan_area
from areas.models import Area, ConsensusRun
from peers.daemon import db, slow, start_soon
from peers.models import LocalPeer, Peer

log = logging.getLogger(__name__)
QUIET_SECONDS = float(os.environ.get("REALIZE_QUIET_SECONDS", "1.0"))
REFRESH_AREAS_EVERY = 2.0


def watch_tree(notify: inotify.Inotify, top: str) -> list[tuple[int, str]]:
    """Watch a directory and every directory under it (not following symlinks): (wd, path)."""
    watched = []
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            wd = notify.add(directory)
        except OSError as exc:  # the kernel's limit of watches, most likely
            log.warning("cannot watch %s: %s; its changes are found by the next scan", top, exc)
            return watched
        if wd is None:
            continue
        watched.append((wd, directory))
        try:
            with os.scandir(directory) as it:
                stack.extend(
                    item.path
                    for item in it
                    if not is_ignored(item.name) and item.is_dir(follow_symlinks=False)
                )
        except OSError:
            continue
    return watched


class Watcher:
    def __init__(self, daemon):
        self.daemon = daemon
        self.loop: asyncio.AbstractEventLoop | None = None
        self.notify: inotify.Inotify | None = None
        self.areas: dict[int, str] = {}  # area id -> its root, watched
        self.dirs: dict[int, tuple[int, str]] = {}  # watch descriptor -> (area id, directory)
        self.changed_at: dict[int, float] = {}
        self.rest_timers: dict[int, asyncio.TimerHandle] = {}
        # Staging directories (wd -> area id), and cookies of renames out of them or of our
        # temporary files: those renames are ours, already recorded.
        self.staging: dict[int, int] = {}
        self.ours: set[int] = set()

    def touch(self, area_id: int) -> None:
        self.changed_at[area_id] = time.monotonic()

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.notify = inotify.Inotify()
        self.loop.add_reader(self.notify.fd, self._on_events)
        last_refresh = 0.0
        try:
            while True:
                if time.monotonic() - last_refresh > REFRESH_AREAS_EVERY:
                    await self._refresh_areas()
                    last_refresh = time.monotonic()
                await self._scan_quiet_areas()
                await asyncio.sleep(0.25)
        finally:
            self.loop.remove_reader(self.notify.fd)
            self.notify.close()
            for timer in self.rest_timers.values():
                timer.cancel()

    def _on_events(self) -> None:
        for event in self.notify.read():
            if event.mask & inotify.IN_Q_OVERFLOW:
                for area_id in self.areas:  # events were lost: look at everything again
                    self.touch(area_id)
                continue
            if event.wd in self.staging:
                if event.mask & inotify.IN_IGNORED:
                    del self.staging[event.wd]
                elif event.mask & inotify.IN_MOVED_FROM:
                    self._ours(event.cookie)
                continue
            watched = self.dirs.get(event.wd)
            if watched is None:
                continue
            area_id, directory = watched
            if event.mask & inotify.IN_IGNORED:
                del self.dirs[event.wd]
                continue
            if is_ignored(event.name):
                if event.mask & inotify.IN_MOVED_FROM:
                    self._ours(event.cookie)  # a file staged beside its place, put there
                continue  # our own temporary files
            ours = bool(event.mask & inotify.IN_MOVED_TO) and event.cookie in self.ours
            self.ours.discard(event.cookie)
            if event.mask & inotify.IN_ISDIR:
                path = os.path.join(directory, event.name)
                if event.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
                    self._add(area_id, watch_tree(self.notify, path))
                elif event.mask & inotify.IN_MOVED_FROM:
                    self._forget(lambda a, d, p=path: d == p or d.startswith(p + "/"))
            if not ours:
                self.touch(area_id)

    def _ours(self, cookie: int) -> None:
        if len(self.ours) > 10_000:  # renames whose other half was never seen
            self.ours.clear()
        self.ours.add(cookie)

    def _add(self, area_id: int, watched: list[tuple[int, str]]) -> None:
        for wd, directory in watched:
            self.dirs[wd] = (area_id, directory)

    def _forget(self, which) -> None:
        """Stop watching the directories for which which(area id, directory) holds."""
        for wd, (area_id, directory) in list(self.dirs.items()):
            if which(area_id, directory):
                del self.dirs[wd]
                self.notify.remove(wd)

    async def _refresh_areas(self) -> None:
        # An Unreal area too: the files realized there are Real files like any other.
        areas = await db(lambda: list(Area.objects.values_list("id", "path")))
        current = dict(areas)
        for area_id, path in list(self.areas.items()):
            if current.get(area_id) != path:
                self._forget(lambda a, d, gone=area_id: a == gone)
                del self.areas[area_id]
        watching = set(self.staging.values())
        for area_id in current:
            if area_id not in watching:
                self._watch_staging(area_id)
        for area_id, path in current.items():
            if area_id in self.areas or not os.path.isdir(path):
                continue
            root = str(path).rstrip("/") or "/"
            self._add(area_id, await asyncio.to_thread(watch_tree, self.notify, root))
            self.areas[area_id] = path
            self.touch(area_id)  # a first scan: changes made while peerd was not running

    def _watch_staging(self, area_id: int) -> None:
        staging = staging_path(settings.REALIZE_HOME, area_id)
        try:
            staging.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Renames out of it only: not every write of every file staged there.
            wd = self.notify.add(str(staging), inotify.IN_MOVED_FROM)
        except OSError as exc:
            log.info("cannot watch %s: %s", staging, exc)
            return
        if wd is not None:
            self.staging[wd] = area_id

    async def _scan_quiet_areas(self) -> None:
        now = time.monotonic()
        for area_id, changed in list(self.changed_at.items()):
            if now - changed < QUIET_SECONDS:
                continue
            del self.changed_at[area_id]
            try:
                result, rest = await slow(_scan, area_id, changed)
            except Exception:
                log.exception("scanning area %s failed", area_id)
                continue
            if result is None or not result.changes:
                continue
            log.info("area %s: %d local changes", area_id, len(result.changes))
            urgent = any(c.kind in (Kind.DELETE, Kind.RENAME) for c in result.changes)
            timer = self.rest_timers.pop(area_id, None)
            if timer:
                timer.cancel()
            if urgent:
                start_soon(self.start_consensus(area_id))
            else:
                self.rest_timers[area_id] = self.loop.call_later(
                    rest, lambda a=area_id: start_soon(self.start_consensus(a))
                )

    async def start_consensus(self, area_id: int) -> None:
        self.rest_timers.pop(area_id, None)
        name = await db(_may_start, area_id)
        if name is None:
            return  # gone, paused, or outside its consensus windows
        for conn in list(self.daemon.connections.values()):
            try:
                if name not in await conn.call("areas", {}, timeout=30):
                    continue
                await db(_request, area_id, conn.peer_key)
            except Exception as exc:  # noqa: BLE001 - try the other peers
                log.info("no automatic consensus with %s: %s", conn.peer_name, exc)


def _scan(area_id: int, changed: float) -> tuple[ScanResult | None, float]:
    """Index the area, unless a scan started after its last change (`changed`) meanwhile."""
    area = Area.objects.filter(pk=area_id).first()
    if area is None:
        return None, 0
    key = bytes(LocalPeer.get().public_key)
    return scan_area(area, key, unless_since=changed), float(area.rest_seconds)


def _may_start(area_id: int) -> str | None:
    """The area's name if an automatic consensus may start now (areas.windows)."""
    area = Area.objects.filter(pk=area_id).first()
    if area is None or area.paused:
        return None
    if not area.may_start_consensus():
        log.info("area %s: its changes wait for its next consensus window", area.name)
        return None
    return area.name


def _request(area_id: int, key: bytes) -> None:
    area = Area.objects.get(pk=area_id)
    peer = Peer.objects.get(public_key=key)
    if area.is_shared_with(peer):
        ConsensusRun.objects.request(area, peer, "auto")
