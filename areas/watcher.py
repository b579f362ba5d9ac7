"""Watching the Real (inside peerd): index an area when its files have been quiet a moment,
then start consensus by itself: at once after a delete or rename, after the area's rest
period after creates and edits."""

import asyncio
import logging
import os
import time

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from peers.models import LocalPeer, Peer
from peers.sync import db, slow

from .consensus import request_consensus
from .history import Kind
from .models import Area
from .paths import TEMP_PREFIX
from .scanner import ScanResult, scan_area

log = logging.getLogger(__name__)
QUIET_SECONDS = float(os.environ.get("REALIZE_QUIET_SECONDS", "1.0"))
REFRESH_AREAS_EVERY = 2.0
# Only what changes files: opening and reading them (a peer being served, a scan) is not
# even delivered by the kernel.
CHANGES = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileModifiedEvent,
    FileClosedEvent,
]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "Watcher", area_id: int):
        self.watcher = watcher
        self.area_id = area_id

    def on_any_event(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [getattr(event, "src_path", ""), getattr(event, "dest_path", "")]
        if all(os.path.basename(p).startswith(TEMP_PREFIX) for p in paths if p):
            return
        self.watcher.loop.call_soon_threadsafe(self.watcher.touch, self.area_id)


class Watcher:
    def __init__(self, daemon):
        self.daemon = daemon
        self.loop: asyncio.AbstractEventLoop | None = None
        self.observer = Observer()
        self.watches: dict[int, tuple[str, object]] = {}
        self.changed_at: dict[int, float] = {}
        self.rest_timers: dict[int, asyncio.TimerHandle] = {}

    def touch(self, area_id: int) -> None:
        self.changed_at[area_id] = time.monotonic()

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.observer.start()
        last_refresh = 0.0
        try:
            while True:
                if time.monotonic() - last_refresh > REFRESH_AREAS_EVERY:
                    await self._refresh_areas()
                    last_refresh = time.monotonic()
                await self._scan_quiet_areas()
                await asyncio.sleep(0.25)
        finally:
            self.observer.stop()
            for timer in self.rest_timers.values():
                timer.cancel()

    async def _refresh_areas(self) -> None:
        areas = await db(lambda: list(Area.objects.values_list("id", "path")))
        current = dict(areas)
        for area_id, (path, watch) in list(self.watches.items()):
            if current.get(area_id) != path:
                self.observer.unschedule(watch)
                del self.watches[area_id]
        for area_id, path in current.items():
            if area_id in self.watches or not os.path.isdir(path):
                continue
            watch = self.observer.schedule(
                _Handler(self, area_id), path, recursive=True, event_filter=CHANGES
            )
            self.watches[area_id] = (path, watch)
            self.touch(area_id)  # a first scan: changes made while peerd was not running

    async def _scan_quiet_areas(self) -> None:
        now = time.monotonic()
        for area_id, changed in list(self.changed_at.items()):
            if now - changed < QUIET_SECONDS:
                continue
            del self.changed_at[area_id]
            try:
                result, rest = await slow(_scan, area_id)
            except Exception:  # noqa: BLE001 - one failed scan must not stop the watcher
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
                asyncio.create_task(self.start_consensus(area_id))
            else:
                self.rest_timers[area_id] = self.loop.call_later(
                    rest, lambda a=area_id: asyncio.create_task(self.start_consensus(a))
                )

    async def start_consensus(self, area_id: int) -> None:
        self.rest_timers.pop(area_id, None)
        name = await db(
            lambda: Area.objects.filter(pk=area_id).values_list("name", flat=True).first()
        )
        if name is None:
            return
        for conn in list(self.daemon.connections.values()):
            try:
                if name not in await conn.call("areas", {}, timeout=30):
                    continue
                await db(_request, area_id, conn.peer_key)
            except Exception as exc:  # noqa: BLE001 - try the other peers
                log.info("no automatic consensus with %s: %s", conn.peer_name, exc)


def _scan(area_id: int) -> tuple[ScanResult | None, float]:
    area = Area.objects.filter(pk=area_id).first()
    if area is None:
        return None, 0
    return scan_area(area, bytes(LocalPeer.get().public_key)), float(area.rest_seconds)


def _request(area_id: int, key: bytes) -> None:
    area = Area.objects.get(pk=area_id)
    peer = Peer.objects.get(public_key=key)
    request_consensus(area, peer, "auto")
