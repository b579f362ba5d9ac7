"""The Areas pages: list, add, run consensus now, an area's runs and conflicts; live runs."""

import os

import pytest
from channels.db import database_sync_to_async
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from areas.models import Area, Conflict, ConsensusRun, Entry
from peers.models import Peer

KEY = bytes(32)
# home, peerd (a fake peerd on home's socket) and docs are fixtures of tests/conftest.py.


def peer(name: str) -> Peer:
    return Peer.objects.create(name=name, public_key=os.urandom(32))


def messages_after(client, response) -> str:
    assert response.status_code == 302
    return client.get(response.url).content.decode()


# The list and the add form.


@pytest.mark.django_db
def test_areas_page_lists_areas_with_counts_and_last_run(admin_client, docs, tmp_path):
    for path, blob in [("a", b"1" * 32), ("b", b"2" * 32), ("gone", None)]:
        Entry.objects.create(area=docs, path=path, blob_hash=blob)
    Conflict.objects.create(area=docs, path="a", other_origin=KEY, description="both edited")
    Conflict.objects.create(
        area=docs, path="b", other_origin=KEY, description="old", resolved_at=timezone.now()
    )
    ConsensusRun.objects.create(area=docs, peer_name="beta", status="failed")
    ConsensusRun.objects.create(area=docs, peer_name="beta", status="done")
    (tmp_path / "photos").mkdir()
    Area.objects.create(name="photos", path=str(tmp_path / "photos"))

    page = admin_client.get(reverse("areas"))
    assert page.status_code == 200
    rows = {area.name: area for area in page.context["areas"]}
    assert (rows["docs"].files, rows["docs"].open_conflicts) == (2, 1)
    assert rows["docs"].last_run.status == "done"
    assert (rows["photos"].files, rows["photos"].open_conflicts, rows["photos"].last_run) == (
        0,
        0,
        None,
    )
    html = page.content.decode()
    assert docs.path in html and "Run consensus now" in html and "never" in html
    assert 'href="/areas/docs/"' in html


@pytest.mark.django_db
def test_add_an_area(admin_client, tmp_path):
    (tmp_path / "music").mkdir()
    response = admin_client.post(
        reverse("areas"), {"name": "music", "path": str(tmp_path / "music"), "mode": "real"}
    )
    assert f"Added area music at {tmp_path / 'music'}." in messages_after(admin_client, response)
    area = Area.objects.get()
    assert (area.name, area.path, area.mode) == ("music", str(tmp_path / "music"), "real")


@pytest.mark.django_db
def test_an_unreal_area_is_added(admin_client, tmp_path):
    (tmp_path / "films").mkdir()
    form = {"name": "films", "path": str(tmp_path / "films"), "mode": "unreal"}
    response = admin_client.post(reverse("areas"), form)
    assert "Added area films" in messages_after(admin_client, response)
    assert Area.objects.get().mode == "unreal"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "path", "mode", "message"),
    [
        ("new", "missing", "real", "/missing does not exist."),
        ("new", "a-file", "real", "/a-file is not a directory."),
        ("new", "docs/inner", "real", "overlaps area &#x27;docs&#x27;"),
        ("no spaces", "free", "real", "is not a valid area name"),
        ("docs", "free", "real", "An area named &#x27;docs&#x27; already exists."),
        ("new", "free", "sideways", "Select a valid choice."),
        ("new", "", "real", "This field is required."),
    ],
)
def test_bad_input_shows_a_message_and_adds_nothing(
    admin_client, docs, tmp_path, name, path, mode, message
):
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "docs" / "inner").mkdir()
    (tmp_path / "free").mkdir()
    form = {"name": name, "path": str(tmp_path / path) if path else "", "mode": mode}
    response = admin_client.post(reverse("areas"), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list(Area.objects.values_list("name", flat=True)) == ["docs"]


# Run consensus now.


@pytest.mark.django_db
def test_run_now_without_peerd_says_so(admin_client, docs, home):
    response = admin_client.post(reverse("area_consensus", args=["docs"]))
    assert response.url == "/areas/"
    assert "The peer daemon is not running" in messages_after(admin_client, response)
    assert not ConsensusRun.objects.exists()


@pytest.mark.django_db
def test_run_now_starts_consensus_with_the_peers_sharing_the_area(admin_client, docs, peerd):
    beta, _ = peer("beta"), peer("gamma")
    peerd({"beta": ["docs", "music"], "gamma": ["music"], "delta": RuntimeError("gone")})
    response = admin_client.post(reverse("area_consensus", args=["docs"]))
    assert "Consensus started with beta." in messages_after(admin_client, response)
    run = ConsensusRun.objects.get()
    assert (run.area, run.peer, run.trigger, run.status) == (docs, beta, "browser", "pending")


@pytest.mark.django_db
def test_run_now_when_no_connected_peer_shares_the_area(admin_client, docs, peerd):
    peer("beta")
    peerd({"beta": ["music"]})
    response = admin_client.post(reverse("area_consensus", args=["docs"]))
    assert "No connected peer shares area docs." in messages_after(admin_client, response)
    assert not ConsensusRun.objects.exists()


@pytest.mark.django_db
def test_run_now_returns_to_the_page_it_came_from(admin_client, docs, home):
    url = reverse("area_consensus", args=["docs"])
    assert admin_client.post(url, {"next": "/areas/docs/"}).url == "/areas/docs/"
    assert admin_client.post(url, {"next": "https://elsewhere.example/"}).url == "/areas/"


@pytest.mark.django_db
def test_run_now_needs_post_and_a_known_area(admin_client, docs):
    assert admin_client.get(reverse("area_consensus", args=["docs"])).status_code == 405
    assert admin_client.post(reverse("area_consensus", args=["nope"])).status_code == 404


# An area's page, and the dashboard.


@pytest.mark.django_db
def test_area_page_shows_runs_and_open_conflicts(admin_client, docs):
    now = timezone.now()
    ConsensusRun.objects.create(
        area=docs,
        peer_name="beta",
        trigger="rest",
        status="done",
        started_at=now,
        finished_at=now,
        files_in=3,
        bytes_in=2048,
        files_out=1,
        bytes_out=10,
        conflicts=1,
    )
    ConsensusRun.objects.create(
        area=docs, peer_name="gamma", status="failed", started_at=now, error="gamma went away"
    )
    Conflict.objects.create(
        area=docs,
        path="notes.txt",
        copy_path="notes (conflict from beta).txt",
        other_origin=KEY,
        description="edited here and on beta",
    )
    Conflict.objects.create(
        area=docs, path="settled.txt", other_origin=KEY, description="x", resolved_at=now
    )

    html = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert "beta" in html and "rest" in html and "3 files, 2.0\xa0KB" in html
    assert "1 file, 10\xa0bytes" in html
    assert "gamma" in html and "gamma went away" in html
    assert "notes (conflict from beta).txt" in html and "edited here and on beta" in html
    assert "settled.txt" not in html
    assert admin_client.get(reverse("area", args=["nope"])).status_code == 404


@pytest.mark.django_db
def test_dashboard_shows_the_last_twenty_runs_of_all_areas(admin_client, docs, tmp_path):
    (tmp_path / "music").mkdir()
    music = Area.objects.create(name="music", path=str(tmp_path / "music"))
    ConsensusRun.objects.bulk_create(
        ConsensusRun(area=docs, peer_name=f"old{i}") for i in range(25)
    )
    ConsensusRun.objects.create(area=music, peer_name="newest")
    page = admin_client.get(reverse("dashboard"))
    html = page.content.decode()
    assert "Recent consensus runs" in html and 'data-live="runs"' in html
    assert len(page.context["runs"]) == 20
    assert page.context["runs"][0].peer_name == "newest"
    assert 'href="/areas/music/"' in html


# Live: the dashboard's websocket forwards runs and area changes.


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_runs_and_new_areas_reach_the_dashboard(tmp_path):
    from areas.register import add_area
    from tests.dashboard import open_dashboard

    dashboard = await open_dashboard()
    (tmp_path / "docs").mkdir()

    def make_run() -> ConsensusRun:
        area = add_area("docs", str(tmp_path / "docs"))
        run = ConsensusRun.objects.create(area=area, peer_name="beta", trigger="browser")
        run.announce()
        return run

    run = await database_sync_to_async(make_run)()
    assert await dashboard.receive_json_from(timeout=30) == {"type": "areas.changed"}
    event = await dashboard.receive_json_from(timeout=30)
    assert event["type"] == "consensus.run"
    assert event["run"]["id"] == run.pk
    assert (event["run"]["area"], event["run"]["peer"], event["run"]["status"]) == (
        "docs",
        "beta",
        "pending",
    )
    await dashboard.disconnect()
    await database_sync_to_async(connections.close_all)()


# Input the system cannot take: a message, never a 500.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("relative/dir", "The path must be absolute (start with /): relative/dir."),
        ("{tmp}/" + "x" * 300, "The path or one of its names is too long."),
        ("{tmp}/" + "x" * 300 + "/inner", "The path or one of its names is too long."),
    ],
)
def test_a_path_the_system_cannot_take_is_a_form_error(admin_client, tmp_path, path, message):
    form = {"name": "new", "path": path.format(tmp=tmp_path), "mode": "real"}
    response = admin_client.post(reverse("areas"), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Area.objects.exists()


@pytest.mark.django_db
def test_a_url_no_area_can_have_is_not_found(admin_client, docs):
    assert admin_client.get("/areas/%00/").status_code == 404
    assert admin_client.post("/areas/%00/consensus/").status_code == 404
    assert admin_client.get("/areas/" + "d" * 300 + "/").status_code == 404


@pytest.mark.django_db
def test_area_page_shows_a_failure_until_a_run_with_that_peer_succeeds(admin_client, docs):
    now = timezone.now()
    earlier = now - timezone.timedelta(minutes=5)
    for peer_name, runs in {
        "beta": [("done", earlier, ""), ("failed", now, "[Errno 28] No space left on device")],
        "gamma": [("failed", earlier, "gamma went away"), ("done", now, "")],
    }.items():
        for status, at, error in runs:
            ConsensusRun.objects.create(
                area=docs, peer_name=peer_name, status=status, finished_at=at, error=error
            )
    ConsensusRun.objects.create(area=docs, peer_name="beta", status="pending")  # not an end

    html = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert 'data-failing="beta"' in html and 'data-failing="gamma"' not in html
    assert "The last consensus with beta failed at" in html
    assert "No space left on device" in html


@pytest.mark.django_db(transaction=True)
def test_run_now_when_the_broker_is_down_says_so_and_keeps_the_run(
    admin_client, docs, peerd, monkeypatch
):
    from kombu.exceptions import OperationalError

    class Down:
        def send_task(self, *args, **kwargs):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("areas.models.current_app", Down())
    peer("beta")
    peerd({"beta": ["docs"]})
    response = admin_client.post(reverse("area_consensus", args=["docs"]))
    page = messages_after(admin_client, response)
    assert "Consensus with beta could not be queued: the broker (Redis) is unreachable" in page
    assert ConsensusRun.objects.get().status == "pending"  # sent again by the next request
