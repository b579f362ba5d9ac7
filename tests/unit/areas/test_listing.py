"""An area's tree one directory at a time (areas.listing): directories derived from the
paths, deleted files hidden, pages, and each file's state."""

import os

import pytest
from django.utils import timezone

from areas.files import blob_cache_directory
from areas.files.paths import BadPath
from areas.listing import (
    FileState,
    NoSuchDirectory,
    check_directory,
    describe_state,
    list_directory,
)
from areas.models import Area, Conflict, Entry
from fusemount.blobcache import BlobCache

pytestmark = pytest.mark.django_db

KEY = bytes(32)


def put(area: Area, path: str, size: int = 10, deleted: bool = False, **fields) -> Entry:
    blob = None if deleted else os.urandom(32)
    return Entry.objects.create(area=area, path=path, blob_hash=blob, size=size, **fields)


def names(listing) -> list[str]:
    return [d.name + "/" for d in listing.directories] + [f.name for f in listing.files]


@pytest.fixture
def tree(docs):
    for path, size in [
        ("readme.txt", 5),
        ("b.txt", 7),
        ("photos/2024/a.jpg", 100),
        ("photos/2024/b.jpg", 200),
        ("photos/cover.jpg", 50),
        ("zebra/deep/er/file", 1),
        ("Apple/x", 3),
    ]:
        put(docs, path, size)
    put(docs, "gone.txt", deleted=True)
    put(docs, "emptied/only-deleted", deleted=True)
    return docs


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("", ["Apple/", "photos/", "zebra/", "b.txt", "readme.txt"]),
        ("photos", ["2024/", "cover.jpg"]),
        ("photos/", ["2024/", "cover.jpg"]),
        ("photos/2024", ["a.jpg", "b.jpg"]),
        ("zebra", ["deep/"]),
        ("zebra/deep/er", ["file"]),
    ],
)
def test_a_directory_lists_its_directories_then_its_files_by_name(tree, directory, expected):
    assert names(list_directory(tree, directory)) == expected


def test_a_directory_counts_the_files_under_it_and_their_size(tree):
    found = {d.name: (d.path, d.files, d.size) for d in list_directory(tree, "").directories}
    assert found == {
        "Apple": ("Apple", 1, 3),
        "photos": ("photos", 3, 350),
        "zebra": ("zebra", 1, 1),
    }


def test_deleted_files_and_directories_left_with_none_are_not_shown(tree):
    assert "gone.txt" not in names(list_directory(tree, ""))
    with pytest.raises(NoSuchDirectory, match="no directory emptied in area docs"):
        list_directory(tree, "emptied")


def test_a_file_and_a_missing_path_are_not_directories(tree):
    with pytest.raises(NoSuchDirectory, match="path photos/cover.jpg is a file, not a directory"):
        list_directory(tree, "photos/cover.jpg")
    with pytest.raises(NoSuchDirectory, match="no directory nowhere"):
        list_directory(tree, "nowhere")
    with pytest.raises(NoSuchDirectory):
        list_directory(tree, "phot")  # a prefix of a name is not a directory


def test_an_empty_area_has_an_empty_root(docs):
    listing = list_directory(docs, "")
    assert (listing.total, listing.directories, listing.files, listing.pages) == (0, [], [], 1)


def test_another_areas_files_are_not_listed(tree, tmp_path):
    (tmp_path / "music").mkdir()
    music = Area.objects.create(name="music", path=str(tmp_path / "music"))
    put(music, "song.ogg")
    assert "song.ogg" not in names(list_directory(tree, ""))
    assert names(list_directory(music, "")) == ["song.ogg"]


@pytest.mark.parametrize(
    "path",
    ["..", "../etc", "a/../b", "/etc", "a//b", "./a", "a\x00b", "x" * 5000, "a/" + "y" * 300],
)
def test_a_path_no_area_can_hold_is_refused(tree, path):
    with pytest.raises(BadPath):
        list_directory(tree, path)


def test_the_root_may_be_given_as_a_slash():
    assert check_directory("/") == check_directory("") == ""


def test_a_large_directory_comes_a_page_at_a_time(docs):
    Entry.objects.bulk_create(
        [Entry(area=docs, path=f"big/d{n:03}/f", blob_hash=KEY, size=1) for n in range(5)]
        + [Entry(area=docs, path=f"big/f{n:03}", blob_hash=KEY, size=1) for n in range(250)]
    )
    first = list_directory(docs, "big", offset=0, limit=100)
    assert (first.total, first.page, first.pages) == (255, 1, 3)
    assert names(first)[:6] == ["d000/", "d001/", "d002/", "d003/", "d004/", "f000"]
    assert len(names(first)) == 100
    assert (first.previous_offset, first.next_offset) == (None, 100)
    second = list_directory(docs, "big", offset=100, limit=100)
    assert names(second)[0] == "f095" and second.page == 2
    last = list_directory(docs, "big", offset=200, limit=100)
    assert names(last)[-1] == "f249" and len(names(last)) == 55
    assert (last.previous_offset, last.next_offset) == (100, None)
    past = list_directory(docs, "big", offset=10_000, limit=100)
    assert (past.total, names(past), past.pages) == (255, [], 3)


def test_the_breadcrumb_leads_from_the_area_to_the_directory(tree):
    listing = list_directory(tree, "photos/2024")
    assert listing.breadcrumb == [("docs", ""), ("photos", "photos"), ("2024", "photos/2024")]
    assert listing.parent == "photos"
    assert list_directory(tree, "").breadcrumb == [("docs", "")]


def test_a_file_has_its_size_time_and_mode(docs):
    put(docs, "notes.txt", size=1234, mtime_ns=1_700_000_000_123_456_789, mode=0o600)
    put(docs, "old", mtime_ns=-(2**63))  # the earliest time the index can hold
    files = {f.name: f for f in list_directory(docs, "").files}
    notes = files["notes.txt"]
    assert (notes.path, notes.size, notes.mode) == ("notes.txt", 1234, 0o600)
    assert notes.mtime.isoformat() == "2023-11-14T22:13:20.123456+00:00"
    assert files["old"].mtime.year == 1677


def test_the_files_of_a_real_area_are_real(tree):
    files = list_directory(tree, "").files
    assert {(f.state, f.cached, f.status) for f in files} == {(FileState.REAL, None, "real")}


def test_an_unreal_file_shows_how_much_of_it_is_cached(docs, home):
    docs.mode = Area.Mode.UNREAL
    docs.save()
    film = put(docs, "film.mkv", size=4000)
    put(docs, "empty", size=0)
    put(docs, "realized.txt", size=10, inode=1234)  # made Real here (areas.index.unreal)
    cache = BlobCache(blob_cache_directory(home), limit=1_000_000)  # as the mount keeps it
    cache.write(bytes(film.blob_hash), 0, b"x" * 1000)
    cache.write(bytes(film.blob_hash), 2000, b"y" * 600)

    files = {f.name: f for f in list_directory(docs, "").files}
    assert (files["film.mkv"].state, files["film.mkv"].cached) == (FileState.UNREAL, 0.4)
    assert files["film.mkv"].status == "unreal 40% cached"
    assert (files["empty"].cached, files["empty"].status) == (1.0, "unreal 100% cached")
    assert (files["realized.txt"].state, files["realized.txt"].cached) == (FileState.REAL, None)


def test_an_unreal_file_with_nothing_cached(docs, home):
    docs.mode = Area.Mode.UNREAL
    docs.save()
    put(docs, "film.mkv", size=4000)
    [film] = list_directory(docs, "").files
    assert (film.cached, film.status) == (0.0, "unreal 0% cached")


def test_both_sides_of_an_open_conflict_are_in_conflict(tree):
    put(tree, "photos/cover (conflict from beta).jpg")
    Conflict.objects.create(
        area=tree, path="b.txt", other_origin=KEY, description="x", resolved_at=timezone.now()
    )
    conflict = Conflict.objects.create(
        area=tree,
        path="photos/cover.jpg",
        copy_path="photos/cover (conflict from beta).jpg",
        other_origin=KEY,
        description="edited here and on beta",
    )
    files = {f.name: f for f in list_directory(tree, "photos").files}
    for name in ("cover.jpg", "cover (conflict from beta).jpg"):
        assert (files[name].state, files[name].conflict_id) == (FileState.CONFLICT, conflict.pk)
        assert files[name].status == "conflict"
    resolved = {f.name: f for f in list_directory(tree, "").files}["b.txt"]
    assert (resolved.state, resolved.conflict_id) == (FileState.REAL, None)


@pytest.mark.parametrize(
    ("state", "cached", "text"),
    [
        (FileState.REAL, None, "real"),
        (FileState.CONFLICT, None, "conflict"),
        (FileState.UNREAL, 0.0, "unreal 0% cached"),
        (FileState.UNREAL, 0.404, "unreal 40% cached"),
        (FileState.UNREAL, 1.0, "unreal 100% cached"),
    ],
)
def test_a_state_in_words_as_the_mount_gives_it(state, cached, text):
    assert describe_state(state, cached) == text
