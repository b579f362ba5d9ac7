"""Blobs in the database: a small blob is not stored at all and a larger blob of one chunk
has no chunk row; each is found as that chunk all the same. A run of a chunk list (a
window) is found as the whole is."""

import os
import random

import pytest

from areas.files import ChunkRef, hash_bytes
from areas.index import (
    BadData,
    chunk_lists,
    chunk_window,
    chunk_window_from_wire,
    chunk_window_to_wire,
    store_blobs,
)
from areas.index.chunk_reads import local_chunks
from areas.models import Area, Blob, BlobChunk, Entry


@pytest.mark.django_db
def test_a_blob_of_one_chunk_has_no_chunk_row_and_is_found_as_its_chunk(tmp_path):
    small, large = os.urandom(2000), os.urandom(400_000)
    one, many = hash_bytes(small), hash_bytes(large)
    assert len(one.chunks) == 1 and len(many.chunks) > 1
    store_blobs([one, many])
    assert not Blob.objects.filter(hash=one.hash).exists()
    assert BlobChunk.objects.filter(blob__hash=many.hash).count() == len(many.chunks)
    lists = chunk_lists([one.hash, many.hash])
    assert one.hash not in lists  # no file holds it: unknown here
    assert lists[many.hash] == many.chunks

    area = Area.objects.create(name="docs", path=str(tmp_path))
    for name, hashed in (("small.bin", one), ("large.bin", many)):
        Entry.objects.create(area=area, path=name, blob_hash=hashed.hash, size=hashed.size)
    assert chunk_lists([one.hash])[one.hash] == [ChunkRef(one.hash, 0, len(small))]
    where = local_chunks({one.hash, many.chunks[1].hash})
    assert where[one.hash][:3] == (str(tmp_path / "small.bin"), 0, len(small))
    second = many.chunks[1]
    assert where[second.hash][:3] == (str(tmp_path / "large.bin"), second.offset, second.length)


@pytest.mark.django_db
def test_a_larger_file_of_one_chunk_is_found_as_that_chunk(tmp_path):
    data = random.Random(1).randbytes(20_000)  # over the smallest chunk; no cut in it
    whole = hash_bytes(data)
    assert whole.chunks == [ChunkRef(whole.hash, 0, len(data))]
    store_blobs([whole])
    assert Blob.objects.filter(hash=whole.hash).exists()
    assert not BlobChunk.objects.filter(blob__hash=whole.hash).exists()
    assert chunk_lists([whole.hash])[whole.hash] == whole.chunks
    area = Area.objects.create(name="docs", path=str(tmp_path))
    (tmp_path / "file.bin").write_bytes(data)
    Entry.objects.create(area=area, path="file.bin", blob_hash=whole.hash, size=len(data))
    assert local_chunks({whole.hash})[whole.hash][:3] == (str(tmp_path / "file.bin"), 0, 20_000)


@pytest.mark.django_db
def test_a_window_of_a_chunk_list_holds_the_range_asked_for(tmp_path):
    """A mount's first read of a large file asks for the chunks around it, not all."""
    data = random.Random(2).randbytes(2_000_000)
    many = hash_bytes(data)
    store_blobs([many])
    second, third = many.chunks[1], many.chunks[2]
    window = chunk_window(many.hash, second.offset + 1, third.offset - second.offset)
    assert window == [second, third]  # every chunk that holds a byte of the range
    assert chunk_window(many.hash, 0, 1 << 40) == many.chunks
    assert chunk_window(os.urandom(32), 0, 10) is None  # not known here
    # Round trip, and refused where it does not hold the range.
    wire = chunk_window_to_wire(window)
    assert chunk_window_from_wire(wire, many.size, second.offset + 1, 10) == window
    with pytest.raises(BadData):
        chunk_window_from_wire(wire, many.size, third.offset + third.length, 10)
    with pytest.raises(BadData):
        chunk_window_from_wire({"at": many.size, "chunks": wire["chunks"]}, many.size, 0, 1)
    # A blob of one chunk (no chunk rows) is its own window.
    small = hash_bytes(os.urandom(2000))
    area = Area.objects.create(name="docs", path=str(tmp_path))
    Entry.objects.create(area=area, path="small.bin", blob_hash=small.hash, size=small.size)
    assert chunk_window(small.hash, 100, 10) == small.chunks
