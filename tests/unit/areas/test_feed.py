"""An area's recent changes: kept past the trim of history every peer has, and shown with
the peer each was made on."""

import os

import pytest
from django.urls import reverse

from areas.index import history
from areas.models import Entry, HistoryEvent, PeerArea
from peers.models import LocalPeer, Peer

pytestmark = pytest.mark.django_db


def _events(area, origins):
    HistoryEvent.objects.bulk_create(
        HistoryEvent(area=area, seq=seq, kind=kind, path=path, old_path=old, origin=origin,
                     origin_seq=seq, size=10 * seq)  # fmt: skip
        for seq, (kind, path, old, origin) in enumerate(origins, start=1)
    )
    area.history_seq = len(origins)
    area.save()


def test_changes_name_the_peer_they_were_made_on(docs, admin_client):
    me = LocalPeer.objects.create(name="alpha", public_key=os.urandom(32))
    beta = Peer.objects.create(name="beta", public_key=os.urandom(32))
    _events(docs, [
        ("create", "a.txt", "", bytes(me.public_key)),
        ("rename", "b.txt", "a.txt", bytes(beta.public_key)),
        ("delete", "c.txt", "", os.urandom(32)),
    ])  # fmt: skip
    changes = docs.recent_changes()
    assert [(c.seq, c.kind, c.by) for c in changes] == [
        (3, "delete", "a former peer"), (2, "rename", "beta"), (1, "create", "alpha (this peer)")
    ]  # fmt: skip
    page = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert "<code>a.txt</code> → <code>b.txt</code>" in page and "a former peer" in page


def test_the_latest_changes_outlive_the_trim(docs, settings):
    beta = Peer.objects.create(name="beta", public_key=os.urandom(32))
    _events(docs, [("create", f"f{i}", "", bytes(beta.public_key)) for i in range(10)])
    PeerArea.objects.create(peer=beta, area=docs, acked_seq=10)
    settings.REALIZE_HISTORY_KEPT = 4
    assert history.trim(docs) == 6
    assert [c.seq for c in docs.recent_changes()] == [10, 9, 8, 7]
    assert history.floor(docs) == 6  # a peer behind that gets a snapshot, as before


def test_idle_runs_fold_on_the_area_page_and_the_dashboard(docs, admin_client):
    from django.utils import timezone

    from areas.models import ConsensusRun

    now = timezone.now()
    for files in (0, 0, 0, 3):
        ConsensusRun.objects.create(area=docs, peer_name="beta", status="done",
                                    files_in=files, finished_at=now)  # fmt: skip
    for url in (reverse("area", args=["docs"]), reverse("dashboard")):
        page = admin_client.get(url).content.decode()
        assert "3 runs with nothing to exchange" in page and "3 files" in page


def test_global_and_local_sizes(docs, admin_client):
    Entry.objects.create(area=docs, path="a", blob_hash=os.urandom(32), size=100, inode=5)
    Entry.objects.create(area=docs, path="b", blob_hash=os.urandom(32), size=50, inode=0)
    Entry.objects.create(area=docs, path="gone", blob_hash=None, size=0)
    assert docs.sizes() == {"global_files": 2, "global_bytes": 150,
                            "local_files": 2, "local_bytes": 150}  # fmt: skip
    docs.mode = "unreal"
    assert docs.sizes()["local_files"] == 1 and docs.sizes()["local_bytes"] == 100
    docs.save()
    page = admin_client.get(reverse("area", args=["docs"])).content.decode()
    assert "1 file, 100\xa0bytes on this disk" in page
