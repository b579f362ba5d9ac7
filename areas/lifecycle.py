"""An area once added: its rest period, consensus windows and sharing peers changed, paused
and resumed, removed.

A paused area is still indexed, but starts no consensus, and peers are told it is not
shared here until it is resumed. Removing an area stops syncing it and keeps its files:
its index, history, runs and conflicts go, its directory stays as it is.
"""

import datetime
import json
import logging
import shutil
import zoneinfo

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from areas.files import staging_path
from areas.index import AreaBusy, index_lock_within
from areas.models import Area, ConsensusWindow, PeerArea
from areas.pull import start_consensus
from areas.register import AreaError
from areas.windows import DAYS, EVERY, SPAN
from peers.client import PeerdUnavailable
from peers.events import send_to_dashboards
from peers.models import Peer
from peers.wire import ProtocolError, RemoteError

log = logging.getLogger(__name__)

# A removal waits this long at most for a scan or a consensus of the area to end.
BUSY_WAIT = 10.0
# Resuming asks peerd for the connected peers within this many seconds.
RESUME_WAIT = 10.0
# The longest rest period: a week (a change waits that long for consensus at most).
MAX_REST = 7 * 24 * 3600


def find(name: str) -> Area:
    area = Area.objects.filter(name=name).first() if isinstance(name, str) else None
    if area is None:
        raise AreaError(f"no area named {name!r}")
    return area


def set_rest(name: str, seconds: int) -> Area:
    """The quiet after a local create or edit before consensus starts by itself."""
    if not isinstance(seconds, int) or not 0 <= seconds <= MAX_REST:
        raise AreaError(f"the rest period must be 0 to {MAX_REST} seconds (a week)")
    return _update(name, rest_seconds=seconds)


def pause(name: str) -> Area:
    return _update(name, paused=True)


def resume(name: str) -> Area:
    """Sync again: with each connected peer sharing the area at once, to take in what
    changed on either side meanwhile (later, by the usual triggers, if peerd cannot)."""
    area = _update(name, paused=False)
    try:
        start_consensus(area, "resume", timeout=RESUME_WAIT)
    except (PeerdUnavailable, OSError, AreaError, ProtocolError, RemoteError) as exc:
        log.info("area %s resumed; no consensus now: %s", area.name, exc)
    return area


def set_mode(name: str, mode: str) -> Area:
    """Real to Unreal: at once; the files stay on this disk, as realized ones, and new
    content from peers stays Unreal. Unreal to Real: the mount fetches every Unreal file
    onto the disk (each checked), and the area becomes Real once all are there
    (finish_realizing); until then it stays Unreal, and `realizing` says so."""
    if mode not in Area.Mode.values:
        raise AreaError("the mode is real or unreal")
    area = find(name)
    try:
        with index_lock_within(area.pk, BUSY_WAIT):
            if mode == Area.Mode.UNREAL:
                return _update(area.name, mode=mode, realizing=False)
            if area.mode == Area.Mode.REAL:
                return area
            _update(area.name, realizing=True)
    except AreaBusy:
        raise AreaError(
            f"area {area.name} is busy (a scan or a consensus): try again in a moment"
        ) from None
    finish_realizing(area.name)
    return find(area.name)


def unreal_left(area: Area) -> int:
    """Files of an Unreal area whose content is not on this disk."""
    return area.entries.filter(blob_hash__isnull=False, inode=0).count()


def finish_realizing(name: str) -> bool:
    """Make a realizing area Real if no Unreal file is left; whether it is Real now."""
    area = find(name)
    if area.mode == Area.Mode.REAL:
        return True
    if not area.realizing:
        return False
    try:
        with index_lock_within(area.pk, BUSY_WAIT):
            if unreal_left(area):
                return False
            _update(area.name, mode=Area.Mode.REAL, realizing=False)
    except AreaBusy:
        return False
    log.info("area %s is Real now: every file is on this disk", area.name)
    return True


def set_sharing(name: str, shared: dict[str, bool]) -> Area:
    """Share the area with these household peers (by name: True, the default) or keep it
    from them (False). A peer it is kept from is neither offered the area nor synced with in
    it, either way; what it has already is left alone, and sharing again takes in what
    changed meanwhile."""
    area = find(name)
    peers = {p.name: p for p in Peer.objects.filter(name__in=list(shared))}
    unknown = sorted(set(shared) - set(peers))
    if unknown:
        raise AreaError(f"no peer named {unknown[0]!r} in the household")
    with transaction.atomic():
        for peer_name, share in shared.items():
            PeerArea.objects.update_or_create(
                peer=peers[peer_name], area=area, defaults={"excluded": not share}
            )
    _changed()
    return area


def _update(name: str, **fields) -> Area:
    area = find(name)
    Area.objects.filter(pk=area.pk).update(**fields)
    for field, value in fields.items():
        setattr(area, field, value)
    _changed()
    return area


def remove(name: str) -> Area:
    """Stop syncing the area and forget it; its files stay. Waits for a scan or consensus
    of it to end (AreaError if it goes on)."""
    area = find(name)
    try:
        with index_lock_within(area.pk, BUSY_WAIT), transaction.atomic():
            for window in area.windows.select_related("task"):
                window.delete()  # and its beat schedule
            Area.objects.filter(pk=area.pk).delete()
    except AreaBusy:
        raise AreaError(
            f"area {area.name} is busy (a scan or a consensus): try again in a moment"
        ) from None
    shutil.rmtree(staging_path(settings.REALIZE_HOME, area.pk), ignore_errors=True)
    _changed()
    return area


def _changed() -> None:
    Area.tell_listeners()
    send_to_dashboards({"type": "areas.changed"})


WINDOW_TASK = "areas.window"
# An EVERY window runs at most this often, and at least once a week.
EVERY_LEAST, EVERY_MOST = 5, 7 * 24 * 60


def add_window(
    name: str,
    kind: str,
    days: str = "*",
    time_zone: str = "UTC",
    start: datetime.time | None = None,
    end: datetime.time | None = None,
    every_minutes: int | None = None,
) -> ConsensusWindow:
    """A consensus window for the area, run by beat: at its start (a span of time, by a
    crontab schedule in its time zone) or every so many minutes (an interval schedule)."""
    area = find(name)
    if days not in DAYS:
        raise AreaError("the days must be every day, weekdays or weekends")
    if time_zone not in zoneinfo.available_timezones():
        raise AreaError(f"unknown time zone {time_zone!r}")
    if kind == SPAN:
        if not isinstance(start, datetime.time) or not isinstance(end, datetime.time):
            raise AreaError("a window needs the time it opens and the time it closes")
        every_minutes = None
    elif kind == EVERY:
        if not isinstance(every_minutes, int) or not EVERY_LEAST <= every_minutes <= EVERY_MOST:
            raise AreaError(f"a run every {EVERY_LEAST} to {EVERY_MOST} minutes (a week)")
        start = end = None
    else:
        raise AreaError("a window is a span of time or a run every few minutes")
    with transaction.atomic():
        window = ConsensusWindow.objects.create(
            area=area, kind=kind, days=days, time_zone=time_zone, start=start, end=end,
            every_minutes=every_minutes,
        )  # fmt: skip
        task = PeriodicTask(
            name=f"Consensus window {window.pk} of area {area.name}",
            task=WINDOW_TASK,
            args=json.dumps([window.pk]),
            # A start missed by far (beat was down) is not run late: the next one comes.
            expire_seconds=15 * 60,
        )
        if kind == SPAN:
            task.crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=str(start.minute), hour=str(start.hour), day_of_week=days,
                day_of_month="*", month_of_year="*", timezone=zoneinfo.ZoneInfo(time_zone),
            )  # fmt: skip
        else:
            task.interval, _ = IntervalSchedule.objects.get_or_create(
                every=every_minutes, period=IntervalSchedule.MINUTES
            )
        task.save()  # saved one by one: beat is told of each (PeriodicTasks.changed)
        window.task = task
        window.save(update_fields=["task"])
    _changed()
    return window


def remove_window(name: str, window_id: int) -> None:
    area = find(name)
    window = ConsensusWindow.objects.filter(area=area, pk=window_id).select_related("task").first()
    if window is None:
        raise AreaError("no such consensus window")
    window.delete()
    _changed()


def window_opens(window_id: int) -> list:
    """Beat's call at a window's start (or an EVERY window's moment): a consensus with the
    connected peers sharing the area, taking what waited."""
    window = ConsensusWindow.objects.filter(pk=window_id).select_related("area").first()
    if window is None or window.area.paused:
        return []
    now = datetime.datetime.now(zoneinfo.ZoneInfo(window.time_zone))
    if now.weekday() not in DAYS[window.days]:
        return []
    return start_consensus(window.area, "window", timeout=RESUME_WAIT)
