"""Consensus windows: the rule (areas.windows, case by case), their beat schedules, and
automatic triggers waiting outside them."""

import datetime
import json

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from areas import lifecycle
from areas.models import Area, ConsensusWindow
from areas.register import AreaError
from areas.watch.catchup import catch_up
from areas.windows import EVERY, SPAN, Window, any_open, is_open, next_start
from peers.models import Peer

UTC = datetime.UTC


def at(day: int, hour: int, minute: int = 0, tz=UTC) -> datetime.datetime:
    """Monday 2026-12-07 is day 0."""
    return datetime.datetime(2026, 12, 7 + day, hour, minute, tzinfo=tz)


def span(days, start, end, tz="UTC"):
    return Window(SPAN, days, tz, datetime.time(*start), datetime.time(*end))


NIGHTS = span("*", (1, 0), (5, 0))
WORKDAY = span("mon-fri", (9, 0), (17, 0))
OVERNIGHT = span("mon-fri", (22, 0), (6, 0))  # Friday 22:00 to Saturday 06:00 too

CASES = [
    ("inside a nightly window", NIGHTS, at(0, 3), True),
    ("at its opening", NIGHTS, at(0, 1), True),
    ("at its closing: closed", NIGHTS, at(0, 5), False),
    ("before it", NIGHTS, at(0, 0, 59), False),
    ("a weekday window on a weekday", WORKDAY, at(2, 12), True),
    ("a weekday window on Saturday", WORKDAY, at(5, 12), False),
    ("through midnight, the evening", OVERNIGHT, at(0, 23), True),
    ("through midnight, the next morning", OVERNIGHT, at(1, 5), True),
    ("through midnight, Saturday morning after Friday", OVERNIGHT, at(5, 5), True),
    ("through midnight, Sunday morning: Saturday has none", OVERNIGHT, at(6, 5), False),
    ("through midnight, the afternoon", OVERNIGHT, at(1, 15), False),
    ("in its own time zone", span("*", (1, 0), (5, 0), "Europe/Paris"), at(0, 1), True),
    ("out of it in its own time zone", span("*", (1, 0), (5, 0), "Europe/Paris"), at(0, 4),
     False),
    ("a run every hour is a moment, not an opening", Window(EVERY, "*", "UTC", None, None, 60),
     at(0, 3), False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "window", "now", "open_"), CASES, ids=[c[0] for c in CASES])
def test_whether_a_window_is_open(name, window, now, open_):
    assert is_open(window, now) is open_


def test_an_area_without_windows_may_always_start():
    assert any_open([], at(0, 3)) and not any_open([WORKDAY], at(5, 12))


def test_the_next_start():
    assert next_start(NIGHTS, at(0, 3)) == at(1, 1)
    assert next_start(WORKDAY, at(4, 18)) == at(7, 9)  # Friday evening: Monday
    every = Window(EVERY, "mon-fri", "UTC", None, None, 60)
    assert next_start(every, at(0, 3, 10), last_run=at(0, 3)) == at(0, 4)
    assert next_start(every, at(5, 3)) == at(7, 0)  # the weekend skipped


@pytest.mark.django_db
def test_a_window_is_a_beat_schedule_and_goes_with_it(docs):
    window = lifecycle.add_window("docs", SPAN, "mon-fri", "Europe/Paris",
                                  datetime.time(1, 30), datetime.time(5, 0))  # fmt: skip
    task = PeriodicTask.objects.get(pk=window.task_id)
    assert (task.task, json.loads(task.args)) == ("areas.window", [window.pk])
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "1", "mon-fri")
    assert str(crontab.timezone) == "Europe/Paris"
    every = lifecycle.add_window("docs", EVERY, "*", "UTC", every_minutes=60)
    interval = PeriodicTask.objects.get(pk=every.task_id).interval
    assert (interval.every, interval.period) == (60, "minutes")
    lifecycle.remove_window("docs", window.pk)
    assert not PeriodicTask.objects.filter(pk=window.task_id).exists()
    lifecycle.remove("docs")  # an area removed takes its windows and their schedules
    assert not ConsensusWindow.objects.exists()
    assert not PeriodicTask.objects.filter(task="areas.window").exists()


@pytest.mark.django_db
def test_bad_windows_are_refused(docs):
    for args in [
        (SPAN, "*", "UTC", None, datetime.time(5)),
        (SPAN, "sometimes", "UTC", datetime.time(1), datetime.time(5)),
        (SPAN, "*", "Mars/Olympus", datetime.time(1), datetime.time(5)),
        (EVERY, "*", "UTC", None, None, 1),
        ("often", "*", "UTC"),
    ]:
        with pytest.raises(AreaError):
            lifecycle.add_window("docs", *args)
    assert not ConsensusWindow.objects.exists() and not PeriodicTask.objects.exists()


@pytest.mark.django_db
def test_automatic_triggers_wait_outside_the_windows(docs):
    beta = Peer.objects.create(name="beta", public_key=b"b" * 32)
    closed = (datetime.datetime.now(UTC) + datetime.timedelta(hours=2)).time()
    opens = (datetime.datetime.now(UTC) + datetime.timedelta(hours=3)).time()
    lifecycle.add_window("docs", SPAN, "*", "UTC", closed, opens)
    area = Area.objects.get()
    assert not area.may_start_consensus()
    assert catch_up(b"b" * 32, {"docs": (5, True)}) == []  # a peer meets us: it waits too
    lifecycle.add_window("docs", SPAN, "*", "UTC", datetime.time(0), datetime.time(0))
    assert area.may_start_consensus()  # a window open all day
    assert catch_up(bytes(beta.public_key), {"docs": (5, True)}) == [("docs", "join")]


@pytest.mark.django_db
def test_windows_are_added_and_removed_on_the_area_page(admin_client, docs):
    url = reverse("area_windows", args=["docs"])
    bad = admin_client.post(url, {"kind": "span", "days": "*", "time_zone": "UTC"})
    assert bad.status_code == 400 and "Give the time the window opens" in bad.content.decode()
    assert not ConsensusWindow.objects.exists()
    response = admin_client.post(url, {"kind": "span", "days": "mon-fri", "start": "01:00",
                                       "end": "05:00", "time_zone": "UTC"})  # fmt: skip
    assert response.status_code == 302
    page = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert "weekdays, 01:00-05:00 (UTC)" in page and "Next:" in page
    window = ConsensusWindow.objects.get()
    admin_client.post(reverse("area_window_remove", args=["docs", window.pk]))
    assert not ConsensusWindow.objects.exists()
    assert "Automatic:" in admin_client.get(reverse("area", args=["docs"])).content.decode()
