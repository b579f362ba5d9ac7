"""Incoming files are written in REALIZE_HOME when they can be renamed from there into the
area, so that watchers of the area see one rename per file; beside their place otherwise."""

import os
import shutil
from pathlib import Path

import pytest

from areas.files import TEMP_PREFIX, clean_temporary_files, staging_directory


def test_on_the_same_filesystem_files_are_staged_in_the_home(tmp_path):
    home, area = tmp_path / "home", tmp_path / "area"
    area.mkdir()
    leftover = home / "staging" / "7" / f"{TEMP_PREFIX}from-a-killed-run"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")

    staging = staging_directory(home, 7, area)

    assert staging == home / "staging" / "7"
    assert list(staging.iterdir()) == []  # what an interrupted run left is gone
    assert list(area.iterdir()) == []  # the probe left nothing in the area
    assert staging.stat().st_mode & 0o777 == 0o700
    probe = staging / "x"
    probe.write_bytes(b"x")
    os.rename(probe, area / "x")  # the point of it: a rename reaches the area


@pytest.mark.skipif(
    not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat("/tmp").st_dev,
    reason="needs /dev/shm on a filesystem of its own",
)
def test_on_another_filesystem_files_are_written_beside_their_place(tmp_path):
    area = tmp_path / "area"
    area.mkdir()
    home = Path("/dev/shm") / f"realize-test-{os.getpid()}"
    try:
        assert staging_directory(home, 7, area) is None
        assert list(area.iterdir()) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_files_being_written_in_an_area_are_named_for_people_and_hidden(tmp_path):
    """A file staged beside its place (an area on another filesystem than the home) is seen
    by whoever looks at the area: its name says what it is. The scanner, the watcher and
    peers leave it alone, and what earlier releases named `.realize-tmp-*` too."""
    from areas.files import check_relative_path, clean_temporary_files, is_ignored
    from areas.files.paths import BadPath
    from areas.files.staging import temporary_name
    from areas.index.scanner import walk

    name = os.path.basename(temporary_name(tmp_path))
    assert name.startswith(".realize-partial-") and name == f"{TEMP_PREFIX}{name[17:]}"
    for hidden in (name, ".realize-tmp-0123abcd-1"):
        assert is_ignored(hidden)
        with pytest.raises(BadPath):
            check_relative_path(f"photos/{hidden}")
        (tmp_path / hidden).write_bytes(b"half a file")
    (tmp_path / "notes.txt").write_bytes(b"whole")
    assert [rel for rel, _full, _st in walk(tmp_path)] == ["notes.txt"]
    clean_temporary_files(tmp_path, stale_after=-1)  # left by writes that ended
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_only_temporary_files_left_long_ago_are_cleaned(tmp_path):
    """A pull clears what interrupted writes left in the area, but not a write under way
    (the mount realizing a file beside its place)."""
    (tmp_path / "sub").mkdir()
    old, fresh = tmp_path / "sub" / f"{TEMP_PREFIX}old", tmp_path / f"{TEMP_PREFIX}fresh"
    kept = tmp_path / "sub" / "file.txt"
    for path in (old, fresh, kept):
        path.write_bytes(b"x")
    long_ago = old.stat().st_mtime - 3600
    os.utime(old, (long_ago, long_ago))
    os.utime(kept, (long_ago, long_ago))
    clean_temporary_files(tmp_path)
    assert not old.exists()
    assert fresh.exists() and kept.exists()
