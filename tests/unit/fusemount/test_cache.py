"""The chunk cache of Unreal files (fusemount.unreal.Chunks): bounded, least recently used
chunks going first, never a chunk of a file open now."""

from fusemount.unreal import Chunks, UnrealFile, cache_limit


def h(n: int) -> bytes:
    return bytes([n]) * 32


def test_the_least_recently_used_chunks_go_past_the_limit(tmp_path):
    cache = Chunks(tmp_path, limit=3000)
    for n in range(3):
        cache.keep(h(n), b"x" * 1000)
    assert cache.cached(h(0)) == b"x" * 1000  # used again: now the most recent
    cache.keep(h(3), b"y" * 1000)
    assert cache.cached(h(1)) is None and not cache.path(h(1)).exists()
    assert all(cache.cached(h(n)) is not None for n in (0, 2, 3))
    assert cache.size == 3000


def test_a_chunk_of_an_open_file_is_never_evicted(tmp_path):
    cache = Chunks(tmp_path, limit=2000)
    blob = h(99)
    cache._lists[blob] = [(h(0), 0, 1000), (h(1), 1000, 1000)]
    cache.opened(blob)
    cache.keep(h(0), b"a" * 1000)
    cache.keep(h(1), b"b" * 1000)
    cache.keep(h(2), b"c" * 1000)  # over the limit, but only this one may go
    assert cache.cached(h(0)) and cache.cached(h(1))
    assert cache.cached(h(2)) is None
    assert cache.cached_share(UnrealFile(blob, 2000, 0, 0o644)) == 1.0
    cache.opened(blob, -1)
    cache.keep(h(3), b"d" * 1000)
    assert cache.size <= 2000


def test_the_cache_is_found_again_and_held_to_a_smaller_limit(tmp_path):
    first = Chunks(tmp_path, limit=10_000)
    for n in range(4):
        first.keep(h(n), b"z" * 1000)
    (first.path(h(0)).parent / ".unfinished").write_bytes(b"half")
    again = Chunks(tmp_path, limit=2000)
    assert again.size == 2000
    assert sum(again.cached(h(n)) is not None for n in range(4)) == 2
    assert not (first.path(h(0)).parent / ".unfinished").exists()


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("REALIZE_CACHE_MB", "5")
    assert cache_limit() == 5 * 1024 * 1024
    monkeypatch.setenv("REALIZE_CACHE_MB", "lots")
    assert cache_limit() == 10 * 1024 * 1024 * 1024
