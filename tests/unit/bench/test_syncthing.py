"""The benchmark's Syncthing pair: a wait that gives up says what the folders were doing."""

import pytest

from bench import syncthing
from bench.timing import GaveUp


class _Folder:
    """Stands in for an Instance: only folder_status() is asked of it."""

    def __init__(self, name: str, status: dict | None):
        self.name = name
        self.status = status

    def folder_status(self) -> dict:
        if self.status is None:
            raise ConnectionRefusedError("not listening yet")
        return self.status


def test_a_folder_state_names_its_error_or_that_syncthing_is_not_answering():
    full = _Folder("B", {"state": "error", "error": "insufficient space on disk"})
    assert syncthing.folder_state(full) == "error (insufficient space on disk)"
    assert syncthing.folder_state(_Folder("A", {"state": "scanning", "error": ""})) == "scanning"
    assert syncthing.folder_state(_Folder("A", None)) == "not answering"


def test_giving_up_on_idle_folders_names_each_folders_state():
    folders = [_Folder("A", {"state": "idle"}), _Folder("B", {"state": "syncing"})]
    with pytest.raises(GaveUp) as caught:
        syncthing._wait_until_idle(folders, 0.3)
    assert "syncthing folders to be idle" in str(caught.value)
    assert "A: idle, B: syncing" in str(caught.value)


def test_idle_folders_end_the_wait():
    syncthing._wait_until_idle([_Folder("A", {"state": "idle"})], 5.0)
