"""Where the blobs asked for by range lie is looked up once for a burst of reads
(areas.serve.answers._blob_files): a random read of an Unreal file asks one range at a time."""

import pytest

from areas.serve import answers

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32
ON_DISK = {A: ("/x/a", (1, 2, 3, 4)), B: ("/x/b", (5, 6, 7, 8))}


@pytest.fixture
def looked_up(monkeypatch):
    asked: list[set[bytes]] = []

    def blob_files(blobs):
        asked.append(set(blobs))
        return {b: ON_DISK[b] for b in blobs if b in ON_DISK}

    monkeypatch.setattr(answers, "blob_files", blob_files)
    monkeypatch.setattr(answers, "_files_kept", answers.OrderedDict())
    return asked


def test_a_blob_found_is_not_looked_up_again_within_the_time(looked_up):
    assert answers._blob_files({A}) == {A: ON_DISK[A]}
    assert answers._blob_files({A, B}) == ON_DISK
    assert answers._blob_files({A, B}) == ON_DISK
    assert looked_up == [{A}, {B}]


def test_a_blob_not_found_is_looked_up_each_time(looked_up):
    assert answers._blob_files({C}) == {}
    assert answers._blob_files({C}) == {}  # it may be indexed meanwhile
    assert looked_up == [{C}, {C}]


def test_what_was_found_is_looked_up_again_once_old(looked_up, monkeypatch):
    answers._blob_files({A})
    monkeypatch.setattr(answers, "FILES_KEPT_FOR", 0.0)
    answers._blob_files({A})
    assert looked_up == [{A}, {A}]


def test_only_so_many_blobs_are_kept(looked_up, monkeypatch):
    monkeypatch.setattr(answers, "FILES_KEPT_MOST", 1)
    answers._blob_files({A})
    answers._blob_files({B})  # A is let go
    answers._blob_files({A, B})
    assert looked_up == [{A}, {B}, {A}]
