"""The mount's metadata in memory (fusemount.metadata), against a real directory and
inotify: what a change on disk makes it forget."""

import os

from fusemount import metadata
from fusemount.inodes import Inodes
from fusemount.metadata import Metadata


def _read(meta: Metadata, root, key=("docs", "")):
    since = meta.events_taken
    wd, found = meta.read_directory(root)
    meta.remember(key, wd, found, since)
    return found


def test_a_directory_read_is_kept_until_a_change_there(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    meta = Metadata(Inodes())
    try:
        assert [name for name, _ in _read(meta, tmp_path)] == ["a.txt"]
        assert meta.listed(("docs", "")) is not None
        meta.take_events()
        assert meta.stats[("docs", "a.txt")].st_size == 1  # nothing changed: still known

        (tmp_path / "a.txt").write_text("longer")
        meta.take_events()
        assert ("docs", "a.txt") not in meta.stats  # its attributes are read again
        assert meta.listings[("docs", "")] == ["a.txt"]  # the names did not change

        (tmp_path / "b.txt").write_text("b")
        meta.take_events()
        assert ("docs", "") not in meta.listings
        # Read again after that change, with no event since: kept.
        _read(meta, tmp_path)
        assert meta.listings[("docs", "")] == ["a.txt", "b.txt"]
    finally:
        meta.close()


def test_a_directory_changed_is_given_to_be_read_again_unless_it_is_large(tmp_path, monkeypatch):
    monkeypatch.setattr(metadata, "REREAD_MOST", 2)
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    for name in "abc":
        (tmp_path / "large" / name).write_text(name)
    meta = Metadata(Inodes())
    try:
        _read(meta, tmp_path / "small", ("docs", "small"))
        _read(meta, tmp_path / "large", ("docs", "large"))
        meta.take_events()
        assert meta.take_changed_directories() == set()  # nothing changed
        (tmp_path / "small" / "new").write_text("x")
        (tmp_path / "large" / "new").write_text("x")
        meta.take_events()
        assert meta.take_changed_directories() == {("docs", "small")}
        assert meta.take_changed_directories() == set()  # given once
        os.chmod(tmp_path / "small", 0o700)  # the directory's own attributes
        meta.take_events()
        assert meta.take_changed_directories() == {("docs", "small")}
    finally:
        meta.close()


def test_a_read_that_raced_a_change_is_not_kept(tmp_path):
    meta = Metadata(Inodes())
    try:
        since = meta.events_taken
        wd, found = meta.read_directory(tmp_path)
        (tmp_path / "new.txt").write_text("x")  # after the listing, before it is kept
        meta.take_events()
        meta.remember(("docs", ""), wd, found, since)
        assert ("docs", "") not in meta.listings
    finally:
        meta.close()


def test_a_file_changed_from_outside_gets_a_new_number_and_the_mounts_own_keep_theirs(
    tmp_path,
):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    inodes = Inodes()
    meta = Metadata(inodes)
    try:
        _read(meta, tmp_path)
        a, b = inodes.number(("docs", "a.txt")), inodes.number(("docs", "b.txt"))
        (tmp_path / "a.txt").write_text("from outside")
        meta.expect(("docs", "b.txt"))
        (tmp_path / "b.txt").write_text("through the mount")
        meta.take_events()
        assert inodes.known(("docs", "a.txt")) is None  # a new number when next asked
        assert inodes.known(("docs", "b.txt")) == b
        assert inodes.key(a) is None
    finally:
        meta.close()


def test_a_directory_moved_away_is_forgotten_with_its_watch(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("f")
    meta = Metadata(Inodes())
    try:
        _read(meta, tmp_path)
        _read(meta, tmp_path / "d", ("docs", "d"))
        assert ("docs", "d/f") in meta.stats
        os.rename(tmp_path / "d", tmp_path / "e")
        meta.take_events()
        assert ("docs", "d") not in meta.listings and ("docs", "d/f") not in meta.stats
        (tmp_path / "e" / "g").write_text("g")  # its old watch would name it d/g
        meta.take_events()
        assert ("docs", "d") not in meta.listings
    finally:
        meta.close()
