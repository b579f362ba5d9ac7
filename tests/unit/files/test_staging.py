"""Incoming files are written in REALIZE_HOME when they can be renamed from there into the
area, so that watchers of the area see one rename per file; beside their place otherwise."""

import os
import shutil
from pathlib import Path

import pytest

from areas.files import TEMP_PREFIX, staging_directory


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
