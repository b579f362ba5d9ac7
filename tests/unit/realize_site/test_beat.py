"""Beat outlives the database going away: one line per outage, the schedule read again after.

django-celery-beat's scheduler caught database errors where it checks for changes and
syncs, but not where it reads the whole schedule again (after a change, and every five
minutes). With the database away at that moment, beat exited: `realize up` restarted it,
once in ten PostgreSQL restarts of the fault suite."""

import contextlib
import datetime
import logging

import pytest
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from realize_site.beat import RETRY, Scheduler
from realize_site.celery import app
from tests.appliance import free_port


@contextlib.contextmanager
def database_away():
    """The next connection goes to a port where nothing listens, as when PostgreSQL is
    stopped; the one open now is closed."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_beat_outlives_a_database_outage_and_reads_its_schedule_again(caplog):
    caplog.set_level(logging.INFO)
    scheduler = Scheduler(app=app)
    scheduler.tick()
    with database_away():
        # The full read it makes every five minutes falls due while the database is away.
        scheduler._last_full_sync -= datetime.timedelta(minutes=6)
        assert [scheduler.tick() for _ in range(3)] == [RETRY] * 3
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="made while beat waited", task="x", interval=every)
    scheduler.tick()
    assert "made while beat waited" in scheduler.schedule
    said = [r.getMessage() for r in caplog.records if r.name == "realize_site.beat"]
    assert len(said) == 2 and said[0].startswith("database unavailable: ")
    assert said[1] == "database available again"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
