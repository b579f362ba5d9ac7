"""Samples of traffic and cache use (realize_site.sampling): what moved since the last sample
is written, old samples are trimmed, and a write the database refuses is skipped."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from realize_site.models import CacheSample, TrafficSample
from realize_site.sampling import KEEP, Sampler, combined, until_next

pytestmark = pytest.mark.django_db


def rows() -> list[tuple[str, int, int]]:
    ordered = TrafficSample.objects.order_by("at", "peer")
    return list(ordered.values_list("peer", "sent", "received"))


def test_what_moved_since_the_last_sample_is_written():
    sampler = Sampler("test")
    now = timezone.now()
    assert sampler.record({"beta": (100, 1000), "gamma": (0, 0)}, now=now)
    assert rows() == [("beta", 100, 1000)]  # nothing moved with gamma: no row
    sampler.record({"beta": (150, 1000), "gamma": (5, 7)}, now=now + dt.timedelta(minutes=1))
    assert rows()[1:] == [("beta", 50, 0), ("gamma", 5, 7)]
    # A counter that went down began again (its process restarted): all of it moved since.
    sampler.record({"beta": (20, 30)}, now=now + dt.timedelta(minutes=2))
    assert rows()[3:] == [("beta", 20, 30)]


def test_the_cache_is_sampled_with_its_bound():
    Sampler("mount").record({}, cache=(3 << 20, 1 << 30))
    assert list(CacheSample.objects.values_list("held", "limit")) == [(3 << 20, 1 << 30)]
    assert not TrafficSample.objects.exists()


def test_samples_older_than_a_week_are_trimmed():
    now = timezone.now()
    old, kept = now - KEEP - dt.timedelta(minutes=1), now - KEEP + dt.timedelta(minutes=1)
    for at in (old, kept):
        TrafficSample.objects.create(at=at, peer="beta", sent=1, received=1)
        CacheSample.objects.create(at=at, held=1, limit=2)
    Sampler("test").record({"beta": (1, 1)}, cache=(1, 2), now=now)
    assert sorted(TrafficSample.objects.values_list("at", flat=True)) == [kept, now]
    assert sorted(CacheSample.objects.values_list("at", flat=True)) == [kept, now]


def test_a_write_the_database_refuses_is_logged_once_and_skipped(caplog):
    sampler = Sampler("test")
    caplog.set_level(logging.INFO, logger="realize.sampling")
    # A name longer than the column: PostgreSQL refuses the row, as it refuses all while
    # it restarts.
    assert not sampler.record({"x" * 100: (1, 1)})
    assert not sampler.record({"x" * 100: (2, 2)})
    assert not TrafficSample.objects.exists()
    assert sampler.record({"beta": (5, 5)})
    assert rows() == [("beta", 5, 5)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "a sample is skipped" in lines[0] and "\n" not in lines[0]
    assert "written again" in lines[1]


def test_counters_add_up_per_peer():
    assert combined({"beta": (1, 2)}, {"beta": (10, 20), "gamma": (3, 4)}, {}) == {
        "beta": (11, 22),
        "gamma": (3, 4),
    }


@pytest.mark.parametrize(
    ("now", "wait"), [(120.0, 60.0), (120.5, 59.5), (179.9, pytest.approx(0.1))]
)
def test_samples_are_taken_at_the_turn_of_the_minute(now, wait):
    assert until_next(now) == wait
