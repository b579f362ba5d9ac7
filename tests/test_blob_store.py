"""Blobs in the database: a blob of one chunk is stored without a chunk row, and is found as
that chunk all the same."""

import os

import pytest

from areas.blobs import chunk_lists, store_blobs
from areas.chunking import ChunkRef, hash_bytes
from areas.content import local_chunks
from areas.models import Area, BlobChunk, Entry


@pytest.mark.django_db
def test_a_blob_of_one_chunk_has_no_chunk_row_and_is_found_as_its_chunk(tmp_path):
    small, large = os.urandom(2000), os.urandom(400_000)
    one, many = hash_bytes(small), hash_bytes(large)
    assert len(one.chunks) == 1 and len(many.chunks) > 1
    store_blobs([one, many])
    assert BlobChunk.objects.filter(blob__hash=one.hash).count() == 0
    assert BlobChunk.objects.filter(blob__hash=many.hash).count() == len(many.chunks)
    lists = chunk_lists([one.hash, many.hash])
    assert lists[one.hash] == [ChunkRef(one.hash, 0, len(small))]
    assert lists[many.hash] == many.chunks

    area = Area.objects.create(name="docs", path=str(tmp_path))
    for name, hashed in (("small.bin", one), ("large.bin", many)):
        Entry.objects.create(area=area, path=name, blob_hash=hashed.hash, size=hashed.size)
    where = local_chunks({one.hash, many.chunks[1].hash})
    assert where[one.hash][:3] == (str(tmp_path / "small.bin"), 0, len(small))
    second = many.chunks[1]
    assert where[second.hash][:3] == (str(tmp_path / "large.bin"), second.offset, second.length)
