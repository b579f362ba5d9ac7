"""Blobs and their chunk lists in the database."""

from collections.abc import Iterable

from .chunking import ChunkRef, Hashed
from .models import Blob, BlobChunk


def store_blobs(hashed: Iterable[Hashed]) -> None:
    """Record blobs and their chunk lists, once each, in a few queries for many files."""
    by_hash = {h.hash: h for h in hashed}
    if not by_hash:
        return
    known = {
        bytes(b) for b in Blob.objects.filter(hash__in=list(by_hash)).values_list("hash", flat=True)
    }
    new = [h for key, h in by_hash.items() if key not in known]
    if not new:
        return
    Blob.objects.bulk_create(
        [Blob(hash=h.hash, size=h.size) for h in new], ignore_conflicts=True, batch_size=1000
    )
    ids = dict(
        (bytes(key), pk)
        for key, pk in Blob.objects.filter(hash__in=[h.hash for h in new]).values_list("hash", "id")
    )
    have_chunks = set(
        BlobChunk.objects.filter(blob_id__in=ids.values(), position=0).values_list(
            "blob_id", flat=True
        )
    )
    rows = [
        BlobChunk(blob_id=ids[h.hash], position=i, hash=c.hash, offset=c.offset, length=c.length)
        for h in new
        if ids[h.hash] not in have_chunks
        for i, c in enumerate(h.chunks)
    ]
    BlobChunk.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)


def chunk_list(blob_hash: bytes) -> list[ChunkRef] | None:
    blob = Blob.objects.filter(hash=blob_hash).first()
    if blob is None:
        return None
    return [
        ChunkRef(bytes(h), offset, length)
        for h, offset, length in blob.chunks.values_list("hash", "offset", "length")
    ]


def chunk_lists(blob_hashes: list[bytes]) -> dict[bytes, list[ChunkRef]]:
    rows = (
        BlobChunk.objects.filter(blob__hash__in=blob_hashes)
        .order_by("blob_id", "position")
        .values_list("blob__hash", "hash", "offset", "length")
    )
    lists: dict[bytes, list[ChunkRef]] = {
        bytes(h): []
        for h in Blob.objects.filter(hash__in=blob_hashes).values_list("hash", flat=True)
    }
    for blob_hash, h, offset, length in rows:
        lists[bytes(blob_hash)].append(ChunkRef(bytes(h), offset, length))
    return lists
