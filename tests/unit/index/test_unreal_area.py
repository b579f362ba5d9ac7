"""An Unreal area's files realized one at a time: the scan indexes what its disk holds and
takes nothing else for deleted; a realized file is put in place only over the version shown;
a file never here is deleted as a scan would record it."""

import blake3
import pytest

from areas.index import (
    Change,
    Kind,
    VersionGone,
    delete_unreal,
    history,
    put_emptied,
    put_realized,
    scan_area,
)
from areas.models import Area, Entry, HistoryEvent

ME = b"m" * 32
PEER = b"p" * 32


def unreal_file(area, path, content: bytes) -> bytes:
    """A file a peer has, known here by its metadata alone (as the UnrealApplier leaves it)."""
    blob = blake3.blake3(content).digest()
    history.append(
        area, [Change(Kind.CREATE, path, blob, None, len(content), 10**18, 0o644, origin=PEER,
                      origin_seq=1, version=((PEER, 1),))],  # fmt: skip
        ME,
    )
    Entry.objects.create(area=area, path=path, blob_hash=blob, size=len(content),
                         mtime_ns=10**18, mode=0o644, origin=PEER, inode=0)  # fmt: skip
    return blob


@pytest.fixture
def area(tmp_path):
    return Area.objects.create(name="films", path=str(tmp_path), mode=Area.Mode.UNREAL)


def staged(tmp_path, name: str, content: bytes):
    path = tmp_path / f".realize-partial-{name}"
    path.write_bytes(content)
    return path


@pytest.mark.django_db
def test_a_scan_takes_unreal_files_for_nothing_and_realized_ones_for_files(area, tmp_path):
    unreal_file(area, "far.txt", b"far away")
    near = unreal_file(area, "sub/near.txt", b"near")
    assert scan_area(area, ME).changes == []  # not on this disk: not deleted
    (tmp_path / "sub").mkdir()
    put_realized(area, "sub/near.txt", near, staged(tmp_path / "sub", "a", b"near"), 1.0)
    assert (tmp_path / "sub" / "near.txt").read_bytes() == b"near"
    assert Entry.objects.get(area=area, path="sub/near.txt").inode != 0
    assert scan_area(area, ME).changes == []  # realized: the same version, not a change

    (tmp_path / "sub" / "near.txt").write_bytes(b"near, edited")
    (tmp_path / "mine.txt").write_bytes(b"made here")
    changes = scan_area(area, ME).changes
    assert sorted((c.kind, c.path) for c in changes) == [
        (Kind.CREATE, "mine.txt"),
        (Kind.OVERWRITE, "sub/near.txt"),
    ]
    (tmp_path / "sub" / "near.txt").unlink()
    assert [(c.kind, c.path) for c in scan_area(area, ME).changes] == [
        (Kind.DELETE, "sub/near.txt")
    ]
    assert Entry.objects.get(area=area, path="far.txt").exists  # still Unreal, still there


@pytest.mark.django_db
def test_a_realized_file_goes_in_only_over_the_version_shown(area, tmp_path):
    blob = unreal_file(area, "a.txt", b"one")
    with pytest.raises(VersionGone):  # the mount showed another version
        put_realized(area, "a.txt", b"x" * 32, staged(tmp_path, "b", b"two"), 1.0)
    (tmp_path / "a.txt").write_bytes(b"put there by hand")
    with pytest.raises(VersionGone):  # a file there already: never replaced
        put_realized(area, "a.txt", blob, staged(tmp_path, "c", b"one"), 1.0)
    assert (tmp_path / "a.txt").read_bytes() == b"put there by hand"


@pytest.mark.django_db
def test_an_unreal_file_is_deleted_as_a_scan_records_it(area):
    blob = unreal_file(area, "a.txt", b"one")
    delete_unreal(area, "a.txt", blob, ME, 1.0)
    entry = Entry.objects.get(area=area, path="a.txt")
    assert not entry.exists and bytes(entry.deleted_hash) == blob
    last = HistoryEvent.objects.filter(area=area).order_by("-seq").first()
    assert (last.kind, last.path, bytes(last.base_hash)) == (Kind.DELETE, "a.txt", blob)
    with pytest.raises(VersionGone):  # deleted already
        delete_unreal(area, "a.txt", blob, ME, 1.0)


@pytest.mark.django_db
def test_a_file_written_over_from_nothing_needs_no_content(area, tmp_path):
    """put_emptied: an empty file instead of the content; the scan then records what is
    written there as a change of the version it replaces, or its delete if it goes."""
    blob = unreal_file(area, "a.txt", b"one")
    put_emptied(area, "a.txt", blob, 0o640, 1.0)
    assert (tmp_path / "a.txt").read_bytes() == b""
    (tmp_path / "a.txt").write_bytes(b"two")
    [change] = scan_area(area, ME).changes
    assert (change.kind, change.path, change.base_hash) == (Kind.OVERWRITE, "a.txt", blob)

    other = unreal_file(area, "b.txt", b"three")
    put_emptied(area, "b.txt", other, 0o640, 1.0)
    (tmp_path / "b.txt").unlink()  # gone before any scan: its delete is not lost
    [change] = scan_area(area, ME).changes
    assert (change.kind, change.path, change.base_hash) == (Kind.DELETE, "b.txt", other)
    with pytest.raises(VersionGone):  # deleted: nothing to write over
        put_emptied(area, "b.txt", other, 0o640, 1.0)
