"""Cross-process locks on PostgreSQL advisory locks: the worker, peerd and the CLI share them.

A lock is tied to the database session that holds it, so a process that dies lets go of it.
"""

import contextlib
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
