"""A peer's history pages made ready ahead: while one page is applied, a thread of its own
takes the next page, plans it (what is new here, chains folded) and prepares its first
window: chunk lists asked and stored, the chunks this peer has located, the fetching of the
missing ones started. The peer then sends the next page's content while this one is still
being written, instead of waiting, page after page, for each to be prepared.

Preparing early is safe: a chunk located here that a write of the page before removes is
checked when read and fetched instead, and whatever was fetched for a page that is never
applied (the run failed) is dropped.
"""

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from .apply import Applier, ApplyStats, plan
from .models import Area
from .wire import RemoteEvent


@dataclass
class ReadyPage:
    following: int  # where the page after it starts
    windows: list[list[RemoteEvent]]
    # The first window's applier, prepared, on a connection to the peer of its own.
    first: Applier | None


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
    ):
        self.area, self.remote, self.local_key = area, remote, local_key
        self.stats, self.staging = stats, staging
        self.pages = pages
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        self._coming: Future | None = None

    def _ready_next(self) -> ReadyPage | None:
        item = next(self.pages, None)
        if item is None:
            return None
        batch, following = item
        windows = plan(self.area, batch, self.local_key)
        if not windows:
            return ReadyPage(following, windows, None)
        first = Applier(self.area, self.remote.fork(), self.local_key, self.stats, self.staging)
        try:
            first.prepare(windows[0])
        except BaseException:
            discard(first)
            raise
        return ReadyPage(following, windows, first)

    def __iter__(self) -> Iterator[ReadyPage]:
        self._coming = self._thread.submit(self._ready_next)
        while True:
            coming, self._coming = self._coming, None
            page = coming.result()
            if page is None:
                return
            self._coming = self._thread.submit(self._ready_next)
            yield page

    def close(self) -> None:
        """Drop a page made ready but not taken; end the thread and its database connection."""
        try:
            if self._coming is not None:
                with contextlib.suppress(Exception):
                    page = self._coming.result()
                    if page is not None and page.first is not None:
                        discard(page.first)
        finally:
            self._thread.submit(_close_connection).result()
            self._thread.shutdown()


def discard(applier: Applier) -> None:
    """An applier prepared but never run: stop its fetching, close its connection."""
    try:
        applier.close()
    finally:
        applier.remote.close()


def _close_connection() -> None:
    connection.close()  # this thread's own (django.db.connection is per thread)
