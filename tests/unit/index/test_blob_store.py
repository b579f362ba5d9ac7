"""Blobs in the database: a small blob is not stored at all and a larger blob of one chunk
has no chunk row; each is found as that chunk all the same."""

import os
import random

import pytest

from areas.files import ChunkRef, hash_bytes
from areas.index import chunk_lists, store_blobs
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
