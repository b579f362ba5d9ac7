"""Cross-process locks on PostgreSQL advisory locks: the worker, peerd and the CLI share them.

A lock is tied to the database session that holds it, so a process that dies lets go of it.
"""

import contextlib
import time
from collections.abc import Iterator

from django.db import connection

# First key of the two-key advisory lock: what is being locked.
INDEX = 1  # an area's index and files: scans and applied changes, one at a time
CONSENSUS = 2  # one consensus run per area and peer


@contextlib.contextmanager
def advisory_lock(kind: int, key: int) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [kind, key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, key])


def try_advisory_lock(kind: int, key: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [kind, key])
        return cursor.fetchone()[0]


def release_advisory_lock(kind: int, key: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, key])


def index_lock(area_id: int) -> contextlib.AbstractContextManager[None]:
    return advisory_lock(INDEX, area_id)


# How often a wait for a held lock tries again.
RETRY_EVERY = 0.05


class AreaBusy(TimeoutError):
    """The area's index lock could not be had in time."""


@contextlib.contextmanager
def index_lock_within(area_id: int, seconds: float) -> Iterator[None]:
    """The area's index lock, if it can be had within `seconds` (AreaBusy if not): for a
    request that must not wait behind a long scan or consensus. Taken again inside (by
    scan_area, say), it is the same lock: this session holds it twice."""
    deadline = time.monotonic() + seconds
    while not try_advisory_lock(INDEX, area_id):
        if time.monotonic() > deadline:
            raise AreaBusy("the area is busy: a scan or a consensus holds it")
        time.sleep(RETRY_EVERY)
    try:
        yield
    finally:
        release_advisory_lock(INDEX, area_id)


def busy_area_ids() -> set[int]:
    """The areas whose index lock some session holds now (a scan, or changes applied)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objsubid = 2",
            [INDEX],
        )
        return {int(row[0]) for row in cursor.fetchall()}
