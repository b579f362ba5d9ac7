"""The local history: each change moves its path's version on, nothing is recorded in a form
peers refuse, and changes and snapshots carry versions so a delete is not undone by them."""

import pytest

from areas.index import (
    BadData,
    Change,
    Kind,
    event_from_wire,
    event_row_to_wire,
    history,
    scan_area,
)
from areas.index.versions import pack, pack_stamp, unpack, unpack_known, unpack_stamp
from areas.index.wire import entry_to_wire
from areas.models import Area, Entry, HistoryEvent, PeerArea
from areas.serve.answers import history_since, needs
from peers.models import Peer

ME, PEER = b"m" * 32, b"p" * 32
X = b"x" * 32


@pytest.fixture
def area(tmp_path):
    return Area.objects.create(name="docs", path=str(tmp_path))


def state(area, path):
    entry = Entry.objects.get(area=area, path=path)
    return unpack(entry.version), unpack_known(entry.known, unpack(entry.version))


@pytest.mark.django_db
def test_each_change_made_here_moves_its_paths_version_on(area, tmp_path):
    (tmp_path / "a.txt").write_text("one")
    scan_area(area, ME)
    assert state(area, "a.txt") == (((ME, 1),), ((ME, 1),))
    (tmp_path / "a.txt").rename(tmp_path / "b.txt")
    scan_area(area, ME)
    # The rename moves both its paths on: the tombstone left behind and the new name; the
    # tombstone remembers the version it took away.
    assert state(area, "a.txt")[0] == state(area, "b.txt")[0] == ((ME, 2),)
    assert unpack(Entry.objects.get(area=area, path="a.txt").deleted_version) == ((ME, 1),)
    # A version decided here from a peer is included in the next change made here.
    Entry.objects.filter(area=area, path="b.txt").update(known=pack(((ME, 2), (PEER, 40))))
    (tmp_path / "b.txt").write_text("two")
    scan_area(area, ME)
    assert state(area, "b.txt")[0] == ((ME, 3), (PEER, 40))


@pytest.mark.django_db
def test_a_conflict_copy_made_here_has_the_version_copied(area):
    Entry.objects.create(area=area, path="c", blob_hash=X)
    copied = ((PEER, 5),)
    history.append(area, [Change(Kind.CREATE, "c", X, None, version=copied, stamp=(7, X))], ME)
    entry = Entry.objects.get(area=area, path="c")
    assert (unpack(entry.version), unpack_stamp(entry.stamp)) == (copied, (7, X))
    event = HistoryEvent.objects.get(area=area)
    assert (bytes(event.origin), unpack(event.version)) == (ME, copied)


@pytest.mark.django_db
def test_a_rename_without_its_source_is_recorded_and_sent_as_a_create(area):
    history.append(area, [Change(Kind.RENAME, "y.txt", X, None)], ME)
    event = HistoryEvent.objects.get(area=area)
    assert event.kind == Kind.CREATE
    # One recorded so by an earlier version is sent as peers accept it: it cannot wedge them.
    HistoryEvent.objects.filter(pk=event.pk).update(kind=Kind.RENAME)
    row = (1, Kind.RENAME, "y.txt", "", X, None, 3, 0, 0o644, ME, 1, pack(((ME, 1),)), None,
           None, None, None, False)  # fmt: skip
    sent = event_from_wire(event_row_to_wire(row))
    assert (sent.kind, sent.path) == (Kind.CREATE, "y.txt")


@pytest.mark.django_db
def test_a_snapshot_sends_each_path_with_its_versions(area):
    v, known = ((PEER, 7),), ((ME, 2), (PEER, 7))
    Entry.objects.create(area=area, path="a.txt", blob_hash=X, version=pack(v), known=pack(known),
                         origin=PEER,
                         stamp=pack_stamp((5, X)))  # fmt: skip
    Entry.objects.create(area=area, path="old.txt", deleted_hash=X, version=pack(known), origin=ME,
                         deleted_version=pack(v))  # fmt: skip
    by_path = {e.path: entry_to_wire(e, 9) for e in Entry.objects.filter(area=area)}
    a = event_from_wire(by_path["a.txt"], snapshot=True)
    assert (a.version, a.known, a.stamp, a.snapshot) == (v, known, (5, X), True)
    old = event_from_wire(by_path["old.txt"], snapshot=True)
    assert (old.kind, old.version, old.base, old.base_version) == (Kind.DELETE, known, X, v)


@pytest.mark.django_db
def test_a_change_without_a_version_is_refused():
    """It could never be told from a late copy of an earlier one."""
    row = (1, Kind.CREATE, "y.txt", "", X, None, 3, 0, 0o644, ME, 1, None, None, None, None, None,
           False)  # fmt: skip
    with pytest.raises(BadData):
        event_from_wire(event_row_to_wire(row))


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
def test_a_peers_change_travels_on_with_its_versions(area):
    v, old, base = ((ME, 1), (PEER, 5)), ((PEER, 5),), ((ME, 1),)
    history.append(area, [Change(Kind.RENAME, "b", X, None, 3, 4, old_path="a", origin=PEER,
                                 origin_seq=5, version=v, old_version=old, base_version=base,
                                 stamp=(4, X), old_stamp=(3, X))], ME)  # fmt: skip
    [row] = HistoryEvent.objects.filter(area=area).values_list(
        "seq", "kind", "path", "old_path", "blob_hash", "base_hash", "size", "mtime_ns", "mode",
        "origin", "origin_seq", "version", "old_version", "base_version", "stamp", "old_stamp",
        "moved",
    )  # fmt: skip
    sent = event_from_wire(event_row_to_wire(row))
    assert (sent.version, sent.old_version, sent.base_version) == (v, old, base)
    assert (sent.stamp, sent.old_stamp) == ((4, X), (3, X))


@pytest.mark.django_db
def test_a_peer_is_told_what_it_still_needs_past_its_cursor(area):
    """`.realize/status` counts as Syncthing does: paths changed (items), and the bytes of
    their last content; the asker's own changes, relayed back, are not its to take."""
    Peer.objects.create(name="beta", public_key=PEER)
    y, z = b"y" * 32, b"z" * 32
    history.append(area, [Change(Kind.CREATE, "a", X, None, 100, 1),
                          Change(Kind.CREATE, "b", y, None, 50, 1)], ME)  # fmt: skip
    history.append(area, [Change(Kind.EDIT, "a", z, X, 300, 2)], ME)  # one item, its last size
    history.append(area, [Change(Kind.DELETE, "b", None, y)], ME)  # an item of no bytes
    history.append(area, [Change(Kind.CREATE, "c", X, None, 7, 1, origin=PEER, origin_seq=1,
                                 version=((PEER, 1),), stamp=(1, X))], ME)  # fmt: skip
    assert needs(PEER, "docs", 0) == {"items": 2, "bytes": 300}
    assert needs(PEER, "docs", 3) == {"items": 1, "bytes": 0}
    assert needs(PEER, "docs", 5) == {"items": 0, "bytes": 0}
    with pytest.raises(ValueError):
        needs(PEER, "docs", "0")
