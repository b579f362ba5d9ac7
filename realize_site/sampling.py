"""Samples of traffic and cache use, written once a minute by the process that knows each
figure, for the activity charts (realize_site.activity).

peerd counts its connections and the data links it serves; the worker and the mount count the
data links they dial (peers.client.DIALLED); the mount knows its cache. Each writes what
moved since its last sample, so the rows of several processes add up. Samples older than KEEP
are deleted as new ones are written. A write that fails (the database restarting) is logged
and skipped: the chart shows nothing moved for that minute, and the process carries on.
"""

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping

from django.db import Error, close_old_connections, transaction
from django.utils import timezone

from realize_site.lib import first_line
from realize_site.models import CacheSample, TrafficSample

log = logging.getLogger("realize.sampling")

EVERY = 60.0  # seconds between two samples
KEEP = dt.timedelta(days=7)

Totals = Mapping[str, tuple[int, int]]  # per peer: bytes sent, received


def combined(*totals: Totals) -> dict[str, tuple[int, int]]:
    """Several counters' totals added up, per peer."""
    found: dict[str, tuple[int, int]] = {}
    for each in totals:
        for peer, (sent, received) in each.items():
            was_sent, was_received = found.get(peer, (0, 0))
            found[peer] = (was_sent + sent, was_received + received)
    return found


def until_next(now: float, every: float = EVERY) -> float:
    """Seconds to the next whole multiple of `every` since the epoch: every process samples
    at the turn of the minute, so each minute's bucket has one sample of each."""
    return every - now % every


class Sampler:
    """Turns a process's running totals into samples (record, blocking: call it in a thread)."""

    def __init__(self, process: str) -> None:
        self.process = process
        self._last: dict[str, tuple[int, int]] = {}
        self._failing = False

    def moved(self, totals: Totals) -> dict[str, tuple[int, int]]:
        """What moved with each peer since the last call (a total that went down was reset:
        all of it moved since)."""
        moved = {}
        for peer, (sent, received) in totals.items():
            was_sent, was_received = self._last.get(peer, (0, 0))
            if sent < was_sent or received < was_received:
                was_sent, was_received = 0, 0
            if (sent - was_sent, received - was_received) != (0, 0):
                moved[peer] = (sent - was_sent, received - was_received)
        self._last = dict(totals)
        return moved

    def record(
        self,
        totals: Totals,
        cache: tuple[int, int] | None = None,
        now: dt.datetime | None = None,
    ) -> bool:
        """Write what moved since the last call, and the cache's bytes held and bound if
        given; trim what is older than KEEP. False if the database refused (logged)."""
        now = now or timezone.now()
        moved = self.moved(totals)
        try:
            with transaction.atomic():
                TrafficSample.objects.bulk_create(
                    TrafficSample(at=now, peer=peer, sent=sent, received=received)
                    for peer, (sent, received) in moved.items()
                )
                if cache is not None:
                    CacheSample.objects.create(at=now, held=cache[0], limit=cache[1])
                TrafficSample.objects.trim(now - KEEP)
                CacheSample.objects.trim(now - KEEP)
        except Error as exc:
            if not self._failing:
                log.warning("%s: a sample is skipped: %s", self.process, first_line(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("%s: samples are written again", self.process)
        self._failing = False
        return True

    def start(self, read: Callable[[], tuple[Totals, tuple[int, int] | None]]) -> threading.Event:
        """Record `read()` at each minute, in a thread of its own, until the event returned
        is set."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(until_next(time.time())):
                close_old_connections()
                try:
                    self.record(*read())
                except Exception:
                    log.exception("%s: could not take a sample", self.process)
                finally:
                    close_old_connections()

        threading.Thread(target=run, name=f"sampler-{self.process}", daemon=True).start()
        return stop
