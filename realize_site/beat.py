"""Beat's scheduler: django-celery-beat's, made to outlive a database outage.

Its DatabaseScheduler catches database errors where it syncs and where it checks for
changes, but not where it reads the schedule again (after a change, and every five
minutes): beat exited then, and `realize up` had to restart it. Here a tick that fails on
the database logs one line per outage, keeps the schedule it has, and reads it again whole
once the database answers.
"""

import logging

from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django_celery_beat.schedulers import DatabaseScheduler

from realize_site.lib import first_line

log = logging.getLogger(__name__)

RETRY = 2.0  # seconds between tries while the database is away


class Scheduler(DatabaseScheduler):
    _outage = False

    def tick(self, *args, **kwargs) -> float:
        try:
            if self._outage:
                _connect()
                log.warning("database available again")
                self._outage = False
                self._initial_read = True  # the whole schedule, read again
                self._heap = None
            return super().tick(*args, **kwargs)
        except (DatabaseError, InterfaceError) as exc:
            if not self._outage:
                log.warning("database unavailable: %s", first_line(exc))
            self._outage = True
            return RETRY

    def schedule_changed(self) -> bool:
        # The library logs a traceback here on every tick while the database is away:
        # a connection that fails goes to tick() instead, as one line.
        _connect()
        return super().schedule_changed()


def _connect() -> None:
    """A usable connection, or the database's error."""
    close_old_connections()
    connection.ensure_connection()
