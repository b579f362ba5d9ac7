"""Blobs and their chunk lists in the database."""

import os
import stat
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from areas.files import MIN_SIZE, ChunkRef, Hashed, single_chunk
from areas.index.sql import copy_rows, insert_new, rows
from areas.models import Blob, BlobChunk, Entry

ENTRY_FIELDS = [
    "area", "path", "blob_hash", "size", "mtime_ns", "mode", "inode", "ctime_ns", "origin",
    "version", "known", "stamp", "moved", "updated_at",
]  # fmt: skip


def store_blobs(hashed: Iterable[Hashed]) -> None:
    """Record blobs and their chunk lists, once each, in a few queries for many files.

    A blob and its chunks go in one transaction, chunks only by whoever inserted the blob:
    a concurrent inserter waits, then finds the blob complete.

    Blobs up to MIN_SIZE are not stored: each is one chunk, itself, sized by its entries
    (see chunk_lists and chunk_reads.local_chunks). A larger one-chunk blob gets no chunk row."""
    by_hash = {h.hash: h for h in hashed if h.size > MIN_SIZE}
    if not by_hash:
        return
    known = {bytes(h) for (h,) in rows(_BLOBS.format("hash"), [list(by_hash)])}
    new = [h for key, h in by_hash.items() if key not in known]
    if not new:
        return
    with transaction.atomic(savepoint=False):
        inserted = insert_new(Blob, ["hash", "size"], [(h.hash, h.size) for h in new], "hash, id")
        ids = {bytes(h): pk for h, pk in inserted}
        copy_rows(
            BlobChunk,
            ["blob", "position", "hash", "offset", "length"],
            (
                (ids[h.hash], i, c.hash, c.offset, c.length)
                for h in new
                if h.hash in ids and not is_whole(h.hash, h.chunks)
                for i, c in enumerate(h.chunks)
            ),
        )


_BLOBS = "SELECT {} FROM areas_blob WHERE hash = ANY(%b)"


def is_whole(blob_hash: bytes, chunks: list[ChunkRef]) -> bool:
    """A chunk list of one chunk, the blob itself: not stored (see store_blobs)."""
    return len(chunks) == 1 and chunks[0].hash == blob_hash


def chunk_lists(blob_hashes: list[bytes]) -> dict[bytes, list[ChunkRef]]:
    """The chunk lists of the blobs we know, by blob hash (an empty blob has an empty list).

    A small blob has no row (see store_blobs): it is known if an entry holds it."""
    found = rows(_BLOBS.format("hash, id, size"), [list(blob_hashes)])
    blobs = {pk: bytes(h) for h, pk, _ in found}
    lists: dict[bytes, list[ChunkRef]] = {h: [] for h in blobs.values()}
    missing = [h for h in blob_hashes if h not in lists]
    if missing:
        for h, size in rows(
            "SELECT DISTINCT blob_hash, size FROM areas_entry"
            " WHERE blob_hash = ANY(%b) AND size <= %s",
            [missing, MIN_SIZE],
        ):
            lists[bytes(h)] = single_chunk(bytes(h), size)
    if not blobs:
        return lists
    for blob_id, h, offset, length in rows(
        'SELECT blob_id, hash, "offset", length FROM areas_blobchunk WHERE blob_id = ANY(%b)'
        " ORDER BY blob_id, position",
        [list(blobs)],
    ):
        lists[blobs[blob_id]].append(ChunkRef(bytes(h), offset, length))
    for h, _, size in found:
        if size and not lists[bytes(h)]:
            lists[bytes(h)] = [ChunkRef(bytes(h), 0, size)]  # a blob of one chunk: itself
    return lists


def chunk_window(blob_hash: bytes, offset: int, length: int) -> list[ChunkRef] | None:
    """The chunks of a blob we know that hold any of [offset, offset + length), in order;
    None if the blob is not known here. A read of a large file needs these before its
    whole list (thousands of chunks, tens of milliseconds to send)."""
    found = rows(_BLOBS.format("id, size"), [[blob_hash]])
    if not found:
        whole = chunk_lists([blob_hash]).get(blob_hash)
        return None if whole is None else _within(whole, offset, length)
    blob_id, size = found[0]
    window = [
        ChunkRef(bytes(h), o, n)
        for h, o, n in rows(
            'SELECT hash, "offset", length FROM areas_blobchunk WHERE blob_id = %s'
            ' AND "offset" < %s AND "offset" + length > %s ORDER BY position',
            [blob_id, offset + length, offset],
        )
    ]
    if not window and size:
        return _within(chunk_lists([blob_hash]).get(blob_hash) or [], offset, length)
    return window


def _within(chunks: list[ChunkRef], offset: int, length: int) -> list[ChunkRef]:
    return [c for c in chunks if c.offset < offset + length and c.offset + c.length > offset]


# The fields of a row of entry_row, after the area.
FRESH_FIELDS = [
    "path", "blob_hash", "size", "mtime_ns", "mode", "inode", "ctime_ns", "origin", "version",
    "known", "stamp", "moved",
]  # fmt: skip


def entry_values(e: Entry) -> tuple:
    """A new entry object as a row for insert_entry_rows."""
    return (
        e.area_id,
        e.path,
        e.blob_hash,
        e.size,
        e.mtime_ns,
        e.mode,
        e.inode,
        e.ctime_ns,
        e.origin,
        e.version,
        e.known,
        e.stamp,
        e.moved,
    )


def entry_row(area_id: int, path: str, blob: bytes, st: os.stat_result, origin: bytes) -> tuple:
    """A new entry's row for insert_entry_rows: a file as indexed now. Its version, known,
    stamp and moved (the last four) come from the history (areas.index.history.append), or
    the applier for a peer's change."""
    return (
        area_id,
        path,
        blob,
        st.st_size,
        st.st_mtime_ns,
        stat.S_IMODE(st.st_mode),
        st.st_ino,
        st.st_ctime_ns,
        origin,
        b"",
        b"",
        b"",
        False,
    )


def insert_entry_rows(rows: Iterable[tuple]) -> None:
    """Insert new entries from rows in ENTRY_FIELDS order (less the time, set here)."""
    now = timezone.now()
    copy_rows(Entry, ENTRY_FIELDS, ((*row, now) for row in rows))
