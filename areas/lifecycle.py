"""An area once added: its rest period changed, paused and resumed, removed.

A paused area is still indexed, but starts no consensus, and peers are told it is not
shared here until it is resumed. Removing an area stops syncing it and keeps its files:
its index, history, runs and conflicts go, its directory stays as it is.
"""

import logging
import shutil

from django.conf import settings
from django.db import transaction

from areas.files import staging_path
from areas.index import AreaBusy, index_lock_within
from areas.models import Area
from areas.pull import start_consensus
from areas.register import AreaError
from peers.client import PeerdUnavailable
from peers.events import send_to_dashboards
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
    area = find(name)
    Area.objects.filter(pk=area.pk).update(rest_seconds=seconds)
    area.rest_seconds = seconds
    _changed()
    return area


def pause(name: str) -> Area:
    return _set_paused(name, True)


def resume(name: str) -> Area:
    """Sync again: with each connected peer sharing the area at once, to take in what
    changed on either side meanwhile (later, by the usual triggers, if peerd cannot)."""
    area = _set_paused(name, False)
    try:
        start_consensus(area, "resume", timeout=RESUME_WAIT)
    except (PeerdUnavailable, OSError, AreaError, ProtocolError, RemoteError) as exc:
        log.info("area %s resumed; no consensus now: %s", area.name, exc)
    return area


def _set_paused(name: str, paused: bool) -> Area:
    area = find(name)
    Area.objects.filter(pk=area.pk).update(paused=paused)
    area.paused = paused
    _changed()
    return area


def remove(name: str) -> Area:
    """Stop syncing the area and forget it; its files stay. Waits for a scan or consensus
    of it to end (AreaError if it goes on)."""
    area = find(name)
    try:
        with index_lock_within(area.pk, BUSY_WAIT), transaction.atomic():
            Area.objects.filter(pk=area.pk).delete()
    except AreaBusy:
        raise AreaError(
            f"area {area.name} is busy (a scan or a consensus): try again in a moment"
        ) from None
    shutil.rmtree(staging_path(settings.REALIZE_HOME, area.pk), ignore_errors=True)
    _changed()
    return area


def _changed() -> None:
    send_to_dashboards({"type": "areas.changed"})
