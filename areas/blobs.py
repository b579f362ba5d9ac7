"""Blobs and their chunk lists in the database."""

from collections.abc import Iterable

from django.utils import timezone

from .bulk import copy_rows
from .chunking import ChunkRef, Hashed
from .models import Blob, BlobChunk, Entry

ENTRY_FIELDS = [
    "area", "path", "blob_hash", "size", "mtime_ns", "mode", "inode", "ctime_ns", "origin",
    "updated_at",
]  # fmt: skip


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
    copy_rows(Blob, ["hash", "size"], ((h.hash, h.size) for h in new), ignore_conflicts=True)
    ids = {
        bytes(key): pk
        for key, pk in Blob.objects.filter(hash__in=[h.hash for h in new]).values_list("hash", "id")
    }
    have_chunks = set(
        BlobChunk.objects.filter(blob_id__in=ids.values(), position=0).values_list(
            "blob_id", flat=True
        )
    )
    rows = (
        (ids[h.hash], i, c.hash, c.offset, c.length)
        for h in new
        if ids[h.hash] not in have_chunks
        for i, c in enumerate(h.chunks)
    )
    copy_rows(
        BlobChunk, ["blob", "position", "hash", "offset", "length"], rows, ignore_conflicts=True
    )


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


def insert_entries(entries: list[Entry]) -> None:
    """Insert new entries in one COPY (their objects get no primary key: re-read them)."""
    now = timezone.now()
    copy_rows(
        Entry,
        ENTRY_FIELDS,
        (
            (
                e.area_id,
                e.path,
                e.blob_hash,
                e.size,
                e.mtime_ns,
                e.mode,
                e.inode,
                e.ctime_ns,
                e.origin,
                now,
            )
            for e in entries
        ),
    )
