"""An area once added: its rest period, pausing and resuming, removing (its files stay).

A paused area starts no consensus (asked by anyone), and is not shared with peers until it
is resumed; resuming runs a consensus with the connected peers sharing it."""

import os

import pytest
from django.urls import reverse

from areas import lifecycle
from areas.models import Area, AreaPaused, ConsensusRun, Entry, HistoryEvent
from areas.pull import start_consensus
from areas.register import AreaError
from areas.serve.answers import _begin, area_names
from areas.watch.catchup import area_states, catch_up
from peers.models import Peer


def member(name: str = "beta") -> Peer:
    return Peer.objects.create(name=name, public_key=os.urandom(32))


@pytest.mark.django_db
def test_the_rest_period_is_set_within_bounds(docs):
    assert lifecycle.set_rest("docs", 120).rest_seconds == 120
    assert Area.objects.get().rest_seconds == 120
    for bad in (-1, 8 * 24 * 3600, "60"):
        with pytest.raises(AreaError):
            lifecycle.set_rest("docs", bad)
    with pytest.raises(AreaError, match="no area named 'nope'"):
        lifecycle.set_rest("nope", 10)


@pytest.mark.django_db
def test_a_paused_area_starts_no_consensus_and_is_not_shared(docs, home):
    beta = member()
    lifecycle.pause("docs")
    docs.refresh_from_db()
    with pytest.raises(AreaPaused):  # every trigger goes through this
        ConsensusRun.objects.request(docs, beta, "auto")
    with pytest.raises(AreaError, match="paused"):  # a person's: said before asking peerd
        start_consensus(docs, "browser")
    assert area_names(bytes(beta.public_key)) == []
    assert "docs" not in area_states(beta)
    assert catch_up(bytes(beta.public_key), {"docs": (5, True)}) == []
    with pytest.raises(LookupError, match="paused"):  # a peer's run with us
        _begin(bytes(beta.public_key), "docs")
    assert not ConsensusRun.objects.exists()

    lifecycle.resume("docs")  # peerd is not running: resumed all the same
    assert area_names(bytes(beta.public_key)) == ["docs"]
    assert not Area.objects.get().paused


@pytest.mark.django_db
def test_removing_an_area_forgets_it_and_keeps_its_files(docs, home):
    (open(os.path.join(docs.path, "kept.txt"), "w")).write("kept")
    Entry.objects.create(area=docs, path="kept.txt", blob_hash=b"k" * 32, size=4)
    HistoryEvent.objects.create(area=docs, seq=1, kind="create", path="kept.txt",
                                origin=b"m" * 32, origin_seq=1)  # fmt: skip
    ConsensusRun.objects.create(area=docs, peer_name="beta")
    lifecycle.remove("docs")
    assert not Area.objects.exists()
    assert not Entry.objects.exists() and not HistoryEvent.objects.exists()
    assert not ConsensusRun.objects.exists()
    assert open(os.path.join(docs.path, "kept.txt")).read() == "kept"
    with pytest.raises(AreaError):
        lifecycle.remove("docs")


# In the browser.


@pytest.mark.django_db
def test_the_area_page_edits_pauses_resumes_and_removes(admin_client, docs, home):
    page = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert "Pause syncing" in page and "Rest period" in page

    response = admin_client.post(reverse("area_settings", args=["docs"]), {"rest_seconds": "90"})
    assert response.status_code == 302 and Area.objects.get().rest_seconds == 90
    response = admin_client.post(reverse("area_settings", args=["docs"]), {"rest_seconds": "-5"})
    assert response.status_code == 400 and Area.objects.get().rest_seconds == 90
    assert "greater than or equal to 0" in response.content.decode()
    response = admin_client.post(reverse("area_settings", args=["docs"]), {"rest_seconds": "x"})
    assert response.status_code == 400 and "Enter a whole number" in response.content.decode()

    admin_client.post(reverse("area_pause", args=["docs"]))
    page = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert Area.objects.get().paused and "Resume syncing" in page and "Run consensus" not in page
    assert "paused" in admin_client.get(reverse("areas")).content.decode()
    response = admin_client.post(reverse("area_consensus", args=["docs"]))
    assert "Area docs is paused" in admin_client.get(response.url).content.decode()
    admin_client.post(reverse("area_resume", args=["docs"]))
    assert not Area.objects.get().paused

    confirm = admin_client.get(reverse("area_remove", args=["docs"])).content.decode()
    assert "stay" in confirm and docs.path in confirm
    assert Area.objects.exists()  # a GET asks, and removes nothing
    response = admin_client.post(reverse("area_remove", args=["docs"]))
    assert response.url == "/areas/" and not Area.objects.exists()
    assert os.path.isdir(docs.path)


@pytest.mark.django_db
def test_changing_an_area_needs_a_post_and_a_known_area(admin_client, docs):
    """(And a login, as every page: tests/unit/realize_site/test_login_required.py.)"""
    for name in ("area_settings", "area_mode", "area_sharing", "area_pause", "area_resume"):
        assert admin_client.get(reverse(name, args=["docs"])).status_code == 405
    assert not Area.objects.get().paused
    assert admin_client.post(reverse("area_pause", args=["nope"])).status_code == 404
    assert admin_client.post(reverse("area_remove", args=["nope"])).status_code == 404


@pytest.mark.django_db
def test_an_area_kept_from_a_peer_is_not_offered_to_it_nor_synced(docs, home):
    beta, gamma = member("beta"), member("gamma")
    lifecycle.set_sharing("docs", {"beta": False})
    assert docs.sharing() == [(beta, False), (gamma, True)]
    assert area_names(bytes(beta.public_key)) == []
    assert area_names(bytes(gamma.public_key)) == ["docs"]
    assert "docs" not in area_states(beta)
    assert catch_up(bytes(beta.public_key), {"docs": (5, True)}) == []
    with pytest.raises(LookupError, match="not shared with beta"):
        _begin(bytes(beta.public_key), "docs")
    with pytest.raises(AreaError, match="not shared with beta"):
        start_consensus(docs, "browser", only="beta")
    with pytest.raises(AreaError, match="no peer named 'nobody'"):
        lifecycle.set_sharing("docs", {"nobody": True})
    lifecycle.set_sharing("docs", {"beta": True})
    assert area_names(bytes(beta.public_key)) == ["docs"]


@pytest.mark.django_db
def test_history_is_trimmed_without_waiting_for_a_peer_it_is_kept_from(docs, home, settings):
    from areas.index import history
    from areas.models import PeerArea

    settings.REALIZE_HISTORY_KEPT = 0
    beta, gamma = member("beta"), member("gamma")
    HistoryEvent.objects.bulk_create(
        HistoryEvent(area=docs, seq=seq, kind="create", path=f"f{seq}", origin_seq=seq)
        for seq in (1, 2, 3)
    )
    PeerArea.objects.create(peer=beta, area=docs, acked_seq=0)
    PeerArea.objects.create(peer=gamma, area=docs, acked_seq=2)
    docs.history_seq = 3
    assert history.trim(docs) == 0
    lifecycle.set_sharing("docs", {"beta": False})
    assert history.trim(docs) == 2


@pytest.mark.django_db
def test_the_area_page_chooses_the_peers_it_is_shared_with(admin_client, docs):
    member("beta"), member("gamma")
    page = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert 'name="share" value="beta" checked' in page
    response = admin_client.post(reverse("area_sharing", args=["docs"]), {"share": ["gamma"]})
    assert response.status_code == 302
    assert [(p.name, yes) for p, yes in docs.sharing()] == [("beta", False), ("gamma", True)]
    assert "shared with gamma" in admin_client.get(response.url).content.decode()


@pytest.mark.django_db
def test_the_mode_changes_real_to_unreal_at_once_and_back_once_files_are_here(docs, home):
    Entry.objects.create(area=docs, path="here.txt", blob_hash=os.urandom(32), inode=7)
    assert lifecycle.set_mode("docs", "unreal").mode == "unreal"  # its files stay
    assert lifecycle.set_mode("docs", "real").mode == "real"  # every file is here: at once
    lifecycle.set_mode("docs", "unreal")
    away = Entry.objects.create(area=docs, path="away.txt", blob_hash=os.urandom(32), inode=0)
    area = lifecycle.set_mode("docs", "real")
    assert (area.mode, area.realizing, lifecycle.unreal_left(area)) == ("unreal", True, 1)
    assert not lifecycle.finish_realizing("docs")
    Entry.objects.filter(pk=away.pk).update(inode=8)  # the mount put it on the disk
    assert lifecycle.finish_realizing("docs")
    area = Area.objects.get()
    assert (area.mode, area.realizing) == ("real", False)
    with pytest.raises(AreaError, match="real or unreal"):
        lifecycle.set_mode("docs", "surreal")


@pytest.mark.django_db
def test_unreal_again_while_becoming_real_stops_it(docs, home):
    lifecycle.set_mode("docs", "unreal")
    Entry.objects.create(area=docs, path="away.txt", blob_hash=os.urandom(32), inode=0)
    assert lifecycle.set_mode("docs", "real").realizing
    area = lifecycle.set_mode("docs", "unreal")
    assert (area.mode, area.realizing) == ("unreal", False)
