"""Patches: an edit of a large file moves the bytes it changed, not the chunks around them;
whatever a patch puts together is checked, and a wrong one is fetched whole instead."""

import os
from collections import Counter

import msgpack
import pytest

from areas.files import ChunkRef, hash_bytes
from areas.pull import ChunkFetcher, ChunkSource, Wanted, patches
from tests.unit.files.test_staged_content import stage

KiB = 1024
MiB = 1024 * KiB


def edited_pair(size: int = 4 * MiB) -> tuple[bytes, bytes]:
    """A file and the same with 4 KiB inserted in the middle."""
    old = os.urandom(size)
    middle = size // 2
    return old, old[:middle] + os.urandom(4 * KiB) + old[middle:]


def test_an_insertion_moves_a_few_kilobytes_and_the_patch_puts_it_together():
    old, new = edited_pair()
    signed = patches.signature(old)
    encoded = patches.diff(new, signed.keys)
    assert len(encoded) < 24 * KiB  # the 4 KiB and the pieces either side of it
    assert len(signed.keys) < 48 * KiB
    assert patches.patch(old, signed, encoded, len(new)) == new


def test_new_bytes_with_nothing_in_common_go_whole():
    old, new = os.urandom(64 * KiB), os.urandom(64 * KiB)
    signed = patches.signature(old)
    encoded = patches.diff(new, signed.keys)
    assert patches.patch(old, signed, encoded, len(new)) == new
    assert len(encoded) >= len(new)


@pytest.mark.parametrize(
    "ops",
    [
        [[0, 10**6]],  # more pieces than there are
        [[-1, 1]],
        [[0, 0]],
        [["0", 1]],
        [{"a": 1}],
        [b"x" * 10],  # does not add up to the length
    ],
)
def test_a_malformed_patch_puts_nothing_together(ops):
    old = os.urandom(64 * KiB)
    signed = patches.signature(old)
    assert patches.patch(old, signed, msgpack.packb(ops), 20 * KiB) is None


def test_patch_bytes_that_are_not_a_patch_put_nothing_together():
    old = os.urandom(64 * KiB)
    signed = patches.signature(old)
    assert patches.patch(old, signed, b"\xc1\xff garbage", 100) is None
    assert patches.patch(old, signed, msgpack.packb(7), 100) is None
    assert patches.patch(old, signed, None, 100) is None


@pytest.mark.parametrize("keys", [b"x" * 7, "text", None, b"x" * 8 * (patches.MAX_KEYS + 1)])
def test_a_bad_signature_is_refused(keys):
    with pytest.raises(ValueError):
        patches.check_keys(keys)


def refs(*sizes_and_names) -> list[ChunkRef]:
    out, offset = [], 0
    for name, size in sizes_and_names:
        out.append(ChunkRef(name.encode() * 32, offset, size))
        offset += size
    return out


def test_the_new_chunks_replace_what_lies_between_their_neighbours_in_the_base():
    base = refs(("a", 10), ("b", 20), ("c", 30), ("d", 40))
    new = refs(("a", 10), ("x", 25), ("y", 30), ("d", 40))
    assert patches.replaced(new, base) == {1: (10, 50), 2: (10, 50)}
    # At either end: from the start, up to the end.
    assert patches.replaced(refs(("x", 5), ("b", 20)), base) == {0: (0, 10)}
    assert patches.replaced(refs(("a", 10), ("x", 5)), base) == {1: (10, 90)}
    # A chunk inserted between two that were neighbours replaces nothing.
    assert patches.replaced(refs(("a", 10), ("x", 5), ("b", 20)), base) == {}
    # Neighbours out of their old order bound nothing.
    assert patches.replaced(refs(("c", 30), ("x", 5), ("a", 10)), base) == {}


def feed_source(tmp_path, old: bytes, new: bytes, serve) -> tuple[ChunkSource, object, list]:
    """A source for `new`, whose old version is in a file: the chunks both share are read
    from it, the fetcher asks for the others as patches against it, and `serve(data, keys)`
    answers each range asked. Chunks asked alone are listed, as are those asked by hash."""
    old_path = tmp_path / "old.bin"
    old_path.write_bytes(old)
    old_h, new_h = hash_bytes(old), hash_bytes(new)
    here = {c.hash: c for c in old_h.chunks}
    replacing = patches.replaced(new_h.chunks, old_h.chunks)
    assert replacing  # the edit replaces old bytes
    by_hash = {c.hash: new[c.offset : c.offset + c.length] for c in new_h.chunks}
    alone = []

    def fetch_one(h):
        alone.append(h)
        return by_hash[h]

    def fetch_many(arg_list):
        for args in arg_list:
            if "hashes" in args:
                alone.extend(args["hashes"])
                yield [by_hash[h] for h in args["hashes"]]
                continue
            yield [serve(new[item[1] : item[1] + item[2]], item[3]) for item in args["ranges"]]

    def read_old(replaces):
        return memoryview(old)[replaces[1] : replaces[1] + replaces[2]]

    def elsewhere(h, problem):
        raise problem

    source = ChunkSource(fetch_one, elsewhere)
    source.local = {h: (str(old_path), c.offset, c.length, ()) for h, c in here.items()}
    plan, uses = [], Counter()
    for i, c in enumerate(new_h.chunks):
        if c.hash not in here:
            near = (old_h.hash, *replacing[i])
            plan.append(Wanted(c.hash, c.length, new_h.hash, c.offset, near))
            uses[c.hash] += 1
    source.fetcher = ChunkFetcher(plan, uses, fetch_many, 4 * MiB, 16 * MiB, None, read_old).start()
    return source, new_h, alone


def test_an_edited_file_is_staged_from_a_patch(tmp_path):
    old, new = edited_pair(2 * MiB)
    sent = []

    def serve(data, keys):
        encoded = patches.diff(data, keys)
        sent.append(len(encoded))
        return encoded

    source, new_h, alone = feed_source(tmp_path, old, new, serve)
    staged = stage(tmp_path, new_h, source)
    assert open(staged.tmp, "rb").read() == new
    assert alone == []
    assert source.fetcher.received == sum(sent) < 32 * KiB


def test_a_wrong_patch_is_found_by_the_blob_hash_and_the_chunks_got_whole(tmp_path):
    old, new = edited_pair(2 * MiB)

    def serve(data, keys):
        wrong = bytearray(data)
        wrong[len(wrong) // 3] ^= 1
        return patches.diff(bytes(wrong), keys)

    source, new_h, alone = feed_source(tmp_path, old, new, serve)
    staged = stage(tmp_path, new_h, source)
    assert open(staged.tmp, "rb").read() == new
    assert alone  # the patched chunks again, whole, each checked


def test_a_patch_that_does_not_add_up_is_asked_again_by_hash(tmp_path):
    old, new = edited_pair(2 * MiB)
    source, new_h, alone = feed_source(tmp_path, old, new, lambda data, keys: b"\x93\x01\x02")
    staged = stage(tmp_path, new_h, source)
    assert open(staged.tmp, "rb").read() == new
    assert alone  # by hash, whole


def test_a_peer_asking_for_patches_is_checked_like_any_range():
    from areas.serve.answers import _range_list

    blob, keys = b"b" * 32, patches.signature(os.urandom(10 * KiB)).keys
    ranges, signatures = _range_list([[blob, 0, 100], [blob, 100, 50, keys]])
    assert ranges == [(blob, 0, 100), (blob, 100, 50)]
    assert signatures == {1: keys}
    for bad in (
        [[blob, 0, 100, b"x" * 7]],  # keys of 8 bytes each
        [[blob, 0, 100, "keys"]],
        [[blob, 0, 100, keys, "more"]],
        [[blob, -1, 100, keys]],
    ):
        with pytest.raises(ValueError):
            _range_list(bad)
