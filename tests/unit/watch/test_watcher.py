"""The watcher learns which area changed from inotify: new directories are watched as they
appear, our temporary files are not changes, and a directory moved away is no longer watched."""

import os

from areas.files import TEMP_PREFIX
from areas.watch import Watcher, inotify, watch_tree


def _watching(root) -> Watcher:
    watcher = Watcher(daemon=None)
    watcher.notify = inotify.Inotify()
    watcher.areas[1] = str(root)
    watcher._add(1, watch_tree(watcher.notify, str(root)))
    return watcher


def _touched(watcher: Watcher) -> bool:
    watcher._on_events()
    return bool(watcher.changed_at.pop(1, None))


def test_a_file_in_a_new_directory_is_seen(tmp_path):
    (tmp_path / "old").mkdir()
    watcher = _watching(tmp_path)
    try:
        assert not _touched(watcher)
        (tmp_path / "old" / "new" / "deeper").mkdir(parents=True)
        assert _touched(watcher)
        (tmp_path / "old" / "new" / "deeper" / "file.txt").write_bytes(b"x")
        assert _touched(watcher)
        os.chmod(tmp_path / "old" / "new" / "deeper" / "file.txt", 0o600)
        assert _touched(watcher)
    finally:
        watcher.notify.close()


def test_our_temporary_files_are_not_changes(tmp_path):
    watcher = _watching(tmp_path)
    try:
        temporary = tmp_path / f"{TEMP_PREFIX}half-written"
        temporary.write_bytes(b"x")
        temporary.unlink()
        assert not _touched(watcher)
        temporary.write_bytes(b"y")
        _touched(watcher)
        # Put in place by a peer's change, which recorded it as it did: not a change.
        os.rename(temporary, tmp_path / "done.txt")
        assert not _touched(watcher)
        os.rename(tmp_path / "done.txt", tmp_path / "renamed.txt")  # by someone: a change
        assert _touched(watcher)
    finally:
        watcher.notify.close()


def test_what_is_put_in_place_from_the_staging_directory_is_not_a_change(tmp_path, settings):
    settings.REALIZE_HOME = tmp_path / "home"
    area = tmp_path / "area"
    area.mkdir()
    watcher = _watching(area)
    watcher._watch_staging(1)
    staging = tmp_path / "home" / "staging" / "1"
    try:
        (staging / f"{TEMP_PREFIX}dir").mkdir()
        os.rename(staging / f"{TEMP_PREFIX}dir", area / "photos")
        (staging / f"{TEMP_PREFIX}file").write_bytes(b"x")
        os.rename(staging / f"{TEMP_PREFIX}file", area / "photos" / "a.jpg")
        assert not _touched(watcher)
        # The directory put in place is watched: a change in it later is seen.
        (area / "photos" / "b.jpg").write_bytes(b"y")
        assert _touched(watcher)
        (tmp_path / "elsewhere.jpg").write_bytes(b"z")
        os.rename(tmp_path / "elsewhere.jpg", area / "moved-in.jpg")  # from outside: a change
        assert _touched(watcher)
    finally:
        watcher.notify.close()


def test_a_directory_moved_out_of_the_area_is_forgotten(tmp_path):
    area, elsewhere = tmp_path / "area", tmp_path / "elsewhere"
    (area / "photos" / "2024").mkdir(parents=True)
    elsewhere.mkdir()
    watcher = _watching(area)
    try:
        os.rename(area / "photos", elsewhere / "photos")
        assert _touched(watcher)
        (elsewhere / "photos" / "2024" / "later.jpg").write_bytes(b"x")
        assert not _touched(watcher)
        os.rename(elsewhere / "photos", area / "back")  # and watched again once back
        assert _touched(watcher)
        (area / "back" / "2024" / "again.jpg").write_bytes(b"x")
        assert _touched(watcher)
    finally:
        watcher.notify.close()
