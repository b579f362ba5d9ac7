"""A peer's history pages prepared ahead by a thread while the current page is applied.

Each page is planned and its first window prepared (chunk lists, fetching, staging), so the
peer keeps sending instead of waiting page by page. Bounded by PAGES_AHEAD and AHEAD_BYTES;
one page is always prepared. Safe: local chunks are checked when read, and an unapplied
page's fetched content is dropped.
"""

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from django.db import connection

from areas.index import RemoteEvent
from areas.models import Area
from areas.pull.applier import Applier, plan
from areas.pull.stats import ApplyStats
from areas.pull.unreal import applier_for

PAGES_AHEAD = 4
AHEAD_BYTES = 768 * 1024 * 1024

T = TypeVar("T")


@dataclass
class ReadyPage:
    following: int  # where the page after it starts
    windows: list[list[RemoteEvent]]
    # The first window's applier, prepared, on a connection to the peer of its own.
    first: Applier | None
    # A snapshot's events, all of them: what it reflects is known here once it is applied.
    snapshot: list[RemoteEvent] | None = None

    @property
    def size(self) -> int:
        """Content bytes its first window brings (staged ahead of its decisions)."""
        return sum(e.size for e in self.windows[0]) if self.windows else 0


class Ahead(Generic[T]):
    """Items made in order by a thread of their own, ahead of their consumer.

    `make()` gives the next (None at the end). At most `depth` wait; none is made while the
    waiting and the one consumed weigh `limit` or more, unless none waits. `drop(item)` gets
    the items never taken."""

    def __init__(
        self,
        make: Callable[[], T | None],
        weight: Callable[[T], int],
        drop: Callable[[T], None],
        depth: int,
        limit: int,
        name: str,
        on_exit: Callable[[], None] = lambda: None,
    ):
        self._make, self._weight, self._drop, self._on_exit = make, weight, drop, on_exit
        self.depth, self.limit = depth, limit
        self._cond = threading.Condition()
        self._ready: deque[T] = deque()
        self._held = 0
        self._over = False
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def _room(self) -> bool:
        if not self._ready:
            return True
        return len(self._ready) < self.depth and self._held < self.limit

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closing and not self._room():
                        self._cond.wait()
                    if self._closing:
                        return
                item = self._make()
                with self._cond:
                    if item is None:
                        self._over = True
                        return
                    if self._closing:
                        self._drop(item)
                        return
                    self._ready.append(item)
                    self._held += self._weight(item)
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - raised in the consumer's thread
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._over = True
                self._cond.notify_all()
            self._on_exit()

    def __iter__(self) -> Iterator[T]:
        self._started = True
        self._thread.start()
        finished = 0
        while True:
            with self._cond:
                self._held -= finished
                self._cond.notify_all()
                while not self._ready and not self._over:
                    self._cond.wait()
                if not self._ready:
                    if self._error is not None:
                        raise self._error
                    return
                item = self._ready.popleft()
            finished = self._weight(item)
            yield item

    def close(self) -> None:
        """Make nothing more, wait for the thread, drop what was made and never taken."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._started:
            self._thread.join()
        else:
            self._on_exit()
        with self._cond:
            left, self._ready = list(self._ready), deque()
        for item in left:
            with contextlib.suppress(Exception):
                self._drop(item)


class PagesAhead:
    """Iterate over ReadyPages; close() when done, before the pages' iterator is closed."""

    def __init__(
        self,
        area: Area,
        remote,
        local_key: bytes,
        stats: ApplyStats,
        staging: Path | None,
        pages: Iterator[tuple[list[RemoteEvent], int]],
        depth: int = PAGES_AHEAD,
        limit: int = AHEAD_BYTES,
    ):
        self.area, self.remote, self.local_key = area, remote, local_key
        self.stats, self.staging = stats, staging
        self.pages = pages
        # The fetching of the page made ready last: the next page's waits for it to end.
        self._last_fetcher = None
        self._ahead = Ahead(
            self._ready_next,
            lambda page: page.size,
            _drop,
            depth,
            limit,
            name="prepare",
            on_exit=_close_connection,
        )

    def _ready_next(self) -> ReadyPage | None:
        item = next(self.pages, None)
        if item is None:
            return None
        batch, following = item
        snapshot = batch if batch and batch[0].snapshot else None
        windows = plan(self.area, batch, self.local_key)
        if not windows:
            return ReadyPage(following, windows, None, snapshot)
        first = applier_for(
            self.area, self.remote.fork(), self.local_key, self.stats, self.staging
        )
        try:
            first.prepare(windows[0], after=self._last_fetcher)
        except BaseException:
            discard(first)
            raise
        self._last_fetcher = first.content.source.fetcher
        return ReadyPage(following, windows, first, snapshot)

    def __iter__(self) -> Iterator[ReadyPage]:
        return iter(self._ahead)

    def close(self) -> None:
        """Drop the pages made ready but not taken; end the thread and its connection."""
        self._ahead.close()


def _drop(page: ReadyPage) -> None:
    if page.first is not None:
        discard(page.first)


def discard(applier: Applier) -> None:
    """An applier prepared but never run: stop its fetching, close its connection."""
    try:
        applier.close()
    finally:
        applier.remote.close()


def _close_connection() -> None:
    connection.close()  # the calling thread's own (django.db.connection is per thread)
