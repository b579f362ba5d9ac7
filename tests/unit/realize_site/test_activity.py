"""The activity page and its API: charts of throughput and cache use from the samples, for
the last hour, day or week; a bad span is a readable 400."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from realize_site.models import ApiToken, CacheSample, TrafficSample

pytestmark = pytest.mark.django_db
MB = 1024**2


@pytest.fixture
def samples():
    """Half an hour of pulls from beta at 1 MB/s, some sending to gamma, the cache filling."""
    now = timezone.now().replace(second=0, microsecond=0)  # the last turn of a minute
    for minute in range(30):
        at = now - dt.timedelta(minutes=minute)
        TrafficSample.objects.create(at=at, peer="beta", sent=1000, received=60 * MB)
        CacheSample.objects.create(at=at, held=(30 - minute) * 10 * MB, limit=1024 * MB)
    TrafficSample.objects.create(at=now - dt.timedelta(minutes=3), peer="gamma", sent=6 * MB,
                                 received=0)  # fmt: skip
    # Six days ago: in the week, not in the day.
    TrafficSample.objects.create(at=now - dt.timedelta(days=6), peer="delta", sent=1, received=1)


def test_anonymous_gets_the_login_page(client):
    response = client.get("/activity/")
    assert response.status_code == 302 and "/login/" in response.url


def test_the_page_without_samples_says_so(admin_client):
    page = admin_client.get("/activity/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Nothing was sent or received over the last hour." in html
    assert "No reading of the cache over the last hour" in html
    assert 'aria-current="page">Last hour<' in html
    # A chart of no traffic is drawn; none of a cache never read.
    assert html.count("<svg") == 1 and 'href="/activity/"' in html  # in the navigation


@pytest.mark.usefixtures("samples")
@pytest.mark.parametrize("span", ["hour", "day", "week"])
def test_the_page_draws_the_samples(admin_client, span):
    page = admin_client.get("/activity/", {"span": span})
    assert page.status_code == 200
    html = page.content.decode()
    assert f'aria-current="page">Last {span}<' in html
    assert 'class="line received"' in html and 'class="line held"' in html
    assert 'data-peer="beta"' in html and 'data-peer="gamma"' in html
    assert ('data-peer="delta"' in html) == (span == "week")
    # A screen reader hears the figures; the table gives every point.
    assert 'role="img" aria-label="Over the last ' in html
    assert "The cache holds 300.0\xa0MB of its 1.0\xa0GB" in html
    if span == "hour":
        assert "MB/s" in html and "1.0\xa0MB/s" in html
        assert html.count("<tr><td><time") == 2 * 60


@pytest.mark.parametrize("span", ["month", "x" * 5000, "<script>"])
def test_a_bad_span_is_a_readable_400(admin_client, span):
    page = admin_client.get("/activity/", {"span": span})
    assert page.status_code == 400
    html = page.content.decode()
    assert (
        "Span must be one of hour, day, week" in html and "<script>" not in html.split("<main>")[1]
    )
    assert "<svg" not in html


@pytest.fixture
def token(admin_user):
    _, token = ApiToken.objects.issue(admin_user, "script")
    return token


@pytest.mark.usefixtures("samples")
def test_a_script_reads_the_series(token):
    script = Client()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    day = script.get("/api/v1/activity", {"span": "day"}, **bearer).json()
    assert day["span"] == "day" and day["step_seconds"] == 900 and len(day["points"]) == 96
    assert [p["peer"] for p in day["peers"]] == ["beta", "gamma"]
    beta = day["peers"][0]
    assert beta["received"] == 30 * 60 * MB and beta["sent"] == 30 * 1000
    assert len(beta["points"]) == 96
    assert max(p["received"] for p in day["points"]) == pytest.approx(60 * MB / 60)
    assert day["points"][-1]["limit"] == 1024 * MB
    assert day["points"][0]["held"] is None  # no reading then
    hour = script.get("/api/v1/activity", **bearer).json()
    assert hour["span"] == "hour" and len(hour["points"]) == 60
    assert hour["points"][-1]["received"] == pytest.approx(MB)


def test_the_api_refuses_a_bad_span_and_a_stranger(token):
    script = Client()
    bad = script.get("/api/v1/activity", {"span": "year"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bad.status_code == 400
    assert bad.json() == {"detail": "span must be one of hour, day, week, not 'year'"}
    assert script.get("/api/v1/activity").status_code == 401
