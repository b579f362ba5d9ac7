"""The cache of Unreal content (fusemount.blobcache): a sparse file per blob, bounded, the
least recently used blobs going first, never one open now; ranges from an earlier run
checked before they are trusted."""

import os

from areas.files import cached_share, held_bytes
from fusemount.blobcache import BlobCache
from fusemount.unreal import Chunks, UnrealFile, cache_limit


def h(n: int) -> bytes:
    return bytes([n]) * 32


def one(cache, blob, offset, length, check=None):
    """One range, as read, or None."""
    return cache.read(blob, [(offset, length)], check).get(offset)


def test_chunks_are_written_in_place_and_read_back(tmp_path):
    cache = BlobCache(tmp_path, limit=10_000)
    cache.write(h(1), 1000, b"b" * 500)
    cache.write(h(1), 0, b"a" * 1000)
    assert one(cache, h(1), 0, 1000) == b"a" * 1000
    assert one(cache, h(1), 1000, 500) == b"b" * 500
    assert one(cache, h(1), 1500, 10) is None  # never written
    assert one(cache, h(1), 0, 999) is None  # not the range written
    assert cache.held_bytes(h(1)) == cache.size == 1500


def test_neighbouring_chunks_are_written_and_read_in_one_go(tmp_path, monkeypatch):
    cache = BlobCache(tmp_path, limit=10_000)
    data = b"a" * 100 + b"b" * 200 + b"c" * 300
    cache.write(h(1), 1000, data, [(1000, 100), (1100, 200), (1300, 300)])
    cache.write(h(1), 5000, b"d" * 50)
    assert held_bytes(tmp_path, h(1)) == cache.size == 650
    reads = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append((at, n)) or pread(fd, n, at))
    wanted = [(1300, 300), (1000, 100), (5000, 50), (1100, 200), (1600, 10)]
    assert cache.read(h(1), wanted) == {
        1000: b"a" * 100, 1100: b"b" * 200, 1300: b"c" * 300, 5000: b"d" * 50
    }  # fmt: skip
    assert reads == [(1000, 600), (5000, 50)]  # 1600 was never written


def test_a_stretch_read_drops_only_its_range_that_fails_its_check(tmp_path):
    BlobCache(tmp_path, limit=10_000).write(h(1), 0, b"xy", [(0, 1), (1, 1)])
    again = BlobCache(tmp_path, limit=10_000)
    assert again.read(h(1), [(0, 1), (1, 1)], check=lambda o, d: d == b"x") == {0: b"x"}
    assert again.held_bytes(h(1)) == 1
    assert again.read(h(1), [(0, 1)], check=lambda o, d: False) == {0: b"x"}  # checked now


def test_the_least_recently_used_blobs_go_past_the_limit(tmp_path):
    cache = BlobCache(tmp_path, limit=3000)
    for n in range(3):
        cache.write(h(n), 0, b"x" * 1000)
    assert one(cache, h(0), 0, 1000) == b"x" * 1000  # used again: now the most recent
    cache.write(h(3), 0, b"y" * 1000)
    assert one(cache, h(1), 0, 1000) is None and not cache._path(h(1)).exists()
    assert all(one(cache, h(n), 0, 1000) is not None for n in (0, 2, 3))
    assert cache.size == 3000


def test_a_blob_open_now_is_never_evicted(tmp_path):
    cache = BlobCache(tmp_path, limit=2000)
    cache.opened(h(9))
    cache.write(h(9), 0, b"a" * 1000)
    cache.write(h(9), 1000, b"b" * 1000)
    cache.write(h(2), 0, b"c" * 1000)  # over the limit, but only this one may go
    assert one(cache, h(9), 0, 1000) and one(cache, h(9), 1000, 1000)
    assert one(cache, h(2), 0, 1000) is None
    cache.opened(h(9), -1)
    cache.write(h(3), 0, b"d" * 1000)
    assert cache.size <= 2000


def test_the_cache_is_found_again_checked_and_held_to_a_smaller_limit(tmp_path):
    first = BlobCache(tmp_path, limit=10_000)
    for n in range(4):
        first.write(h(n), 0, bytes([n]) * 1000)
    again = BlobCache(tmp_path, limit=2000)
    assert again.size == 2000
    kept = [n for n in range(4) if again.held_bytes(h(n))]
    assert len(kept) == 2
    n = kept[0]
    # A range from before is checked once; one not as written is dropped (fetched again).
    assert one(again, h(n), 0, 1000, check=lambda o, d: False) is None
    assert again.held_bytes(h(n)) == 0
    m = kept[1]
    assert one(again, h(m), 0, 1000, check=lambda o, d: d == bytes([m]) * 1000) == bytes([m]) * 1000


def test_a_record_whose_data_never_reached_the_disk_is_not_trusted(tmp_path):
    first = BlobCache(tmp_path, limit=10_000)
    first.write(h(1), 0, b"q" * 1000)
    first._path(h(1)).write_bytes(b"")  # as after a crash: the record kept, the data not
    again = BlobCache(tmp_path, limit=10_000)
    assert one(again, h(1), 0, 1000, check=lambda o, d: True) is None
    assert again.size == 0


def test_the_share_cached_of_a_file(tmp_path):
    chunks = Chunks(tmp_path, limit=10_000)
    file = UnrealFile(h(7), 2000, 0, 0o644)
    assert chunks.cached_share(file) == 0.0
    chunks.keep(h(7), 0, b"z" * 1000)
    assert chunks.cached_share(file) == 0.5


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("REALIZE_CACHE_MB", "5")
    assert cache_limit() == 5 * 1024 * 1024
    monkeypatch.setenv("REALIZE_CACHE_MB", "lots")
    assert cache_limit() == 10 * 1024 * 1024 * 1024


def test_another_process_reads_what_the_cache_holds_from_its_files(tmp_path):
    """The web pages show how much of an Unreal file is cached: from the files the mount's
    cache writes as it goes, without opening the cache."""
    cache = BlobCache(tmp_path, limit=10_000)
    cache.write(h(5), 0, b"a" * 1000)
    cache.write(h(5), 3000, b"b" * 500)
    cache.write(h(5), 0, b"a" * 1000)  # held already: not counted twice
    assert held_bytes(tmp_path, h(5)) == cache.held_bytes(h(5)) == 1500
    assert held_bytes(tmp_path, h(6)) == 0  # nothing of it
    cache._path(h(5)).write_bytes(b"a" * 1000)  # as after a crash: the second range lost
    assert held_bytes(tmp_path, h(5)) == 1000


def test_the_share_cached():
    assert [cached_share(held, size) for held, size in [(0, 10), (4, 10), (12, 10), (0, 0)]] == [
        0.0,
        0.4,
        1.0,
        1.0,
    ]
