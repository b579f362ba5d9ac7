"""The local history: each path knows the last change recorded at it, nothing is recorded in a
form peers refuse, and a snapshot carries identities so a delete is not undone by it."""

import pytest

from areas.index import Change, Kind, event_from_wire, event_row_to_wire, history, scan_area
from areas.index.wire import entry_to_wire
from areas.models import Area, Entry, HistoryEvent, PeerArea
from areas.serve.answers import history_since
from peers.models import Peer

ME, PEER = b"m" * 32, b"p" * 32
X = b"x" * 32


@pytest.fixture
def area(tmp_path):
    return Area.objects.create(name="docs", path=str(tmp_path))


def identity(area, path):
    entry = Entry.objects.get(area=area, path=path)
    return bytes(entry.change_origin), entry.change_seq


@pytest.mark.django_db
def test_each_path_knows_the_last_change_recorded_at_it(area, tmp_path):
    (tmp_path / "a.txt").write_text("one")
    scan_area(area, ME)
    assert identity(area, "a.txt") == (ME, 1)
    (tmp_path / "a.txt").rename(tmp_path / "b.txt")
    scan_area(area, ME)
    # The rename marks both its paths: the tombstone left behind and the new name.
    assert identity(area, "a.txt") == identity(area, "b.txt") == (ME, 2)
    Entry.objects.filter(area=area, path="b.txt").update(blob_hash=None, deleted_hash=X)
    history.append(area, [Change(Kind.DELETE, "b.txt", None, X, origin=PEER, origin_seq=40)], ME)
    assert identity(area, "b.txt") == (PEER, 40)


@pytest.mark.django_db
def test_a_rename_without_its_source_is_recorded_and_sent_as_a_create(area):
    history.append(area, [Change(Kind.RENAME, "y.txt", X, None)], ME)
    event = HistoryEvent.objects.get(area=area)
    assert event.kind == Kind.CREATE
    # One recorded so by an earlier version is sent as peers accept it: it cannot wedge them.
    HistoryEvent.objects.filter(pk=event.pk).update(kind=Kind.RENAME)
    row = (1, Kind.RENAME, "y.txt", "", X, None, 3, 0, 0o644, ME, 1, None)
    sent = event_from_wire(event_row_to_wire(row))
    assert (sent.kind, sent.path) == (Kind.CREATE, "y.txt")


@pytest.mark.django_db
def test_a_snapshot_sends_each_path_with_the_identity_of_its_last_change(area):
    history.append(area, [Change(Kind.CREATE, "a.txt", X, None, origin=PEER, origin_seq=7)], ME)
    Entry.objects.create(area=area, path="a.txt", blob_hash=X, change_origin=PEER, change_seq=7)
    Entry.objects.create(area=area, path="old.txt", deleted_hash=X)  # identity not known
    by_path = {e.path: entry_to_wire(e, 9) for e in Entry.objects.filter(area=area)}
    assert (by_path["a.txt"]["origin"], by_path["a.txt"]["origin_seq"]) == (PEER, 7)
    assert (by_path["old.txt"]["kind"], by_path["old.txt"]["origin_seq"]) == (Kind.DELETE, 0)
    assert event_from_wire(by_path["a.txt"], snapshot=True).snapshot


@pytest.mark.django_db
def test_asking_for_history_acknowledges_nothing(area):
    """A page is acked only once applied: the next page's request is sent before that."""
    peer = Peer.objects.create(name="beta", public_key=PEER)
    history.append(area, [Change(Kind.CREATE, f"f{i}", X, None) for i in range(3)], ME)
    history_since(PEER, "docs", 0, 2)
    history_since(PEER, "docs", 2, 2)
    assert PeerArea.objects.get(peer=peer, area=area).acked_seq == 0
    assert HistoryEvent.objects.filter(area=area).count() == 3  # nothing trimmed


@pytest.mark.django_db
def test_a_rename_marks_where_its_content_went_and_a_put_what_it_replaced(area):
    Y = b"y" * 32
    history.append(area, [Change(Kind.CREATE, "a", X, None)], ME)
    Entry.objects.create(area=area, path="a", deleted_hash=X)
    Entry.objects.create(area=area, path="b", blob_hash=Y)
    history.append(
        area, [Change(Kind.RENAME, "b", X, None, old_path="a"), Change(Kind.EDIT, "b", Y, X)], ME
    )
    a, b = Entry.objects.get(area=area, path="a"), Entry.objects.get(area=area, path="b")
    assert (a.moved_to, b.moved_to, bytes(b.base_hash)) == ("b", "", X)
    history.append(area, [Change(Kind.DELETE, "b", None, Y)], ME)
    assert bytes(Entry.objects.get(area=area, path="b").base_hash) == X  # the deleted one's


@pytest.mark.django_db
def test_folded_identities_travel_with_the_change(area):
    folded = ((PEER, 3), (PEER, 4))
    history.append(area, [Change(Kind.CREATE, "a", X, None, origin=PEER, origin_seq=5,
                                 also=folded)], ME)  # fmt: skip
    [row] = HistoryEvent.objects.filter(area=area).values_list(
        "seq", "kind", "path", "old_path", "blob_hash", "base_hash", "size", "mtime_ns", "mode",
        "origin", "origin_seq", "also",
    )  # fmt: skip
    assert event_from_wire(event_row_to_wire(row)).also == folded


@pytest.mark.django_db
def test_a_snapshot_applied_whole_marks_each_origins_changes_up_to_its_latest(area):
    from areas.index import RemoteEvent

    snapshot = [
        RemoteEvent(9, Kind.CREATE, p, "", X, None, 1, 0, 0o644, PEER, n, snapshot=True)
        for p, n in (("a", 4), ("b", 7))
    ]
    history.mark_prefixes(area, snapshot)
    assert history.seen(area, [(PEER, 6), (PEER, 7), (PEER, 8)], ME) == {(PEER, 6), (PEER, 7)}
