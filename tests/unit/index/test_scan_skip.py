"""The watcher's scan after a change is skipped when another scan of the same process
started after that change (a peer's consensus indexed the area meanwhile)."""

import os
import time

import pytest

from areas.index import scan_area
from areas.models import Area

KEY = b"k" * 32


@pytest.mark.django_db(transaction=True)
def test_a_scan_started_after_the_change_makes_another_needless(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    (tmp_path / "a.txt").write_bytes(b"a")
    changed = time.monotonic()  # the watcher sees a.txt appear
    first = scan_area(area, KEY)  # a peer's consensus scans meanwhile
    assert [c.path for c in first.changes] == ["a.txt"]

    (tmp_path / "b.txt").write_bytes(b"b")
    # The watcher's scan for a.txt: the scan above started after it; nothing is done.
    assert scan_area(area, KEY, unless_since=changed).changes == []
    # b.txt is a later change: its own scan finds it.
    later = scan_area(area, KEY, unless_since=time.monotonic())
    assert [c.path for c in later.changes] == ["b.txt"]
    assert os.path.exists(tmp_path / "b.txt")
