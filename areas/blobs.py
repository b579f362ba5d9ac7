"""Blobs and their chunk lists in the database."""

from collections.abc import Iterable

from django.utils import timezone

from .bulk import copy_rows, rows
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
    known = {bytes(h) for (h,) in rows(_BLOBS.format("hash"), [list(by_hash)])}
    new = [h for key, h in by_hash.items() if key not in known]
    if not new:
        return
    copy_rows(Blob, ["hash", "size"], ((h.hash, h.size) for h in new), ignore_conflicts=True)
    ids = {bytes(h): pk for h, pk in rows(_BLOBS.format("hash, id"), [[h.hash for h in new]])}
    have_chunks = {
        blob_id
        for (blob_id,) in rows(
            "SELECT blob_id FROM areas_blobchunk WHERE blob_id = ANY(%b) AND position = 0",
            [list(ids.values())],
        )
    }
    chunk_rows = (
        (ids[h.hash], i, c.hash, c.offset, c.length)
        for h in new
        if ids[h.hash] not in have_chunks
        for i, c in enumerate(h.chunks)
    )
    copy_rows(
        BlobChunk,
        ["blob", "position", "hash", "offset", "length"],
        chunk_rows,
        ignore_conflicts=True,
    )


_BLOBS = "SELECT {} FROM areas_blob WHERE hash = ANY(%b)"


def chunk_lists(blob_hashes: list[bytes]) -> dict[bytes, list[ChunkRef]]:
    """The chunk lists of the blobs we know, by blob hash (an empty blob has an empty list)."""
    lists: dict[bytes, list[ChunkRef]] = {}
    for blob_hash, h, offset, length in rows(
        'SELECT b.hash, c.hash, c."offset", c.length FROM areas_blob b'
        " LEFT JOIN areas_blobchunk c ON c.blob_id = b.id"
        " WHERE b.hash = ANY(%b) ORDER BY b.id, c.position",
        [list(blob_hashes)],
    ):
        chunks = lists.setdefault(bytes(blob_hash), [])
        if h is not None:
            chunks.append(ChunkRef(bytes(h), offset, length))
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
