"""Staging a file: every chunk checked before the file can be used; a wrong piece got again."""

import os
import random
from collections import Counter

import pytest

from areas.files import CorruptContent, hash_bytes, stage_file
from areas.pull import ChunkFetcher, ChunkSource, Wanted


def blob(size: int = 600_000) -> tuple[bytes, object]:
    data = os.urandom(size)
    hashed = hash_bytes(data)
    assert len(hashed.chunks) > 3  # a blob of several chunks
    return data, hashed


def source_serving(hashed, served: bytes, fetched: dict[bytes, bytes]) -> ChunkSource:
    """A source whose feed gets the blob as ranges of `served`; chunks asked alone come
    from `fetched` (what the peer sends when asked for one chunk by its hash)."""
    asked_alone = []

    def fetch_one(h: bytes) -> bytes:
        asked_alone.append(h)
        return fetched[h]

    def elsewhere(h: bytes, problem: Exception) -> bytes:
        raise problem

    def fetch_many(arg_list):
        for args in arg_list:
            yield [served[offset : offset + length] for _b, offset, length in args["ranges"]]

    source = ChunkSource(fetch_one, elsewhere)
    plan = [Wanted(c.hash, c.length, hashed.hash, c.offset) for c in hashed.chunks]
    uses = Counter(c.hash for c in hashed.chunks)
    source.fetcher = ChunkFetcher(plan, uses, fetch_many, 256 * 1024, 4 << 20).start()
    source.asked_alone = asked_alone
    return source


def stage(tmp_path, hashed, source):
    return stage_file(
        str(tmp_path / "file.bin"),
        hashed.hash,
        hashed.chunks,
        source,
        1_700_000_000 * 10**9,
        0o644,
        tmp_path,
    )


def test_a_blob_staged_from_honest_pieces_is_checked_once_as_a_whole(tmp_path):
    data, hashed = blob()
    source = source_serving(hashed, data, {})
    staged = stage(tmp_path, hashed, source)
    assert open(staged.tmp, "rb").read() == data
    assert source.asked_alone == []  # no piece needed again


def test_a_wrong_piece_is_found_by_the_blob_hash_and_got_again_checked(tmp_path):
    data, hashed = blob()
    wrong_at = hashed.chunks[2].offset + 10
    served = data[:wrong_at] + bytes([data[wrong_at] ^ 1]) + data[wrong_at + 1 :]
    honest = {c.hash: data[c.offset : c.offset + c.length] for c in hashed.chunks}
    source = source_serving(hashed, served, honest)
    staged = stage(tmp_path, hashed, source)
    assert open(staged.tmp, "rb").read() == data
    assert set(source.asked_alone) == set(honest)  # each piece again, one by one


def test_a_piece_sent_wrong_again_leaves_no_file(tmp_path):
    data, hashed = blob()
    wrong_at = hashed.chunks[1].offset
    served = data[:wrong_at] + bytes([data[wrong_at] ^ 1]) + data[wrong_at + 1 :]
    again = {c.hash: served[c.offset : c.offset + c.length] for c in hashed.chunks}
    source = source_serving(hashed, served, again)
    with pytest.raises(CorruptContent):
        stage(tmp_path, hashed, source)
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize("size", [0, 2000, 20_000])
def test_a_small_file_is_staged_checked_and_given_its_mode_and_time(tmp_path, size):
    data = random.Random(1).randbytes(size)  # 20,000 bytes of it: one chunk
    hashed = hash_bytes(data)
    assert len(hashed.chunks) <= 1
    source = ChunkSource(lambda h: data, lambda h, problem: None)
    staged = stage(tmp_path, hashed, source)
    st = os.lstat(staged.tmp)
    assert open(staged.tmp, "rb").read() == data and staged.device == st.st_dev
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o644, 1_700_000_000 * 10**9)


def test_a_small_file_sent_wrong_is_never_staged(tmp_path):
    data = os.urandom(2000)
    hashed = hash_bytes(data)

    def fetch_one(h: bytes) -> bytes:
        raise CorruptContent("sent wrong")

    def elsewhere(h: bytes, problem: Exception) -> bytes:
        raise problem

    with pytest.raises(CorruptContent):
        stage(tmp_path, hashed, ChunkSource(fetch_one, elsewhere))
    assert [p.name for p in tmp_path.iterdir()] == []
