"""Area data as it crosses the wire, and the checks everything from a peer goes through."""

from dataclasses import dataclass

from areas.files import MAX_SIZE, ChunkRef, check_relative_path
from areas.index.history import Kind
from areas.index.versions import (
    MAX_ITEMS,
    NO_STAMP,
    Stamp,
    Vector,
    unpack,
    unpack_stamp,
    vector,
)
from areas.models import Entry

HASH_BYTES = 32
MAX_CHUNKS = 1 << 24  # chunks of one blob: 1 TiB at the smallest chunk size
MAX_FILE_SIZE = 1 << 50
KINDS = {k.value for k in Kind}


class BadData(ValueError):
    """Something a peer sent breaks the rules; the exchange stops."""


@dataclass(frozen=True)
class RemoteEvent:
    seq: int
    kind: str
    path: str
    old_path: str
    blob: bytes | None
    base: bytes | None
    size: int
    mtime_ns: int
    mode: int
    origin: bytes
    origin_seq: int
    # The version the change gives its path, and a rename its source (areas.index.versions).
    version: Vector = ()
    old_version: Vector = ()
    # A snapshot's: every change of the path its peer had decided (() : the version's).
    known: Vector = ()
    # A delete's or a rename's: the version of the content it deleted or moved.
    base_version: Vector = ()
    # The strongest content (modification time, hash) the path had in the history of this
    # version: what a conflict weighs (areas.pull.rules).
    stamp: Stamp = NO_STAMP
    # A rename's: the stamp its source had (its tombstone keeps it).
    old_stamp: Stamp = NO_STAMP
    # Made by a move: a part of a rename, relayed; a snapshot's state a rename made.
    moved: bool = False
    # From a snapshot (the peer's history was trimmed): the state of a path, not a change.
    snapshot: bool = False


def event_row_to_wire(row: tuple) -> dict:
    """A history event from its row (seq, kind, path, old_path, blob_hash, base_hash, size,
    mtime_ns, mode, origin, origin_seq, version, old_version, base_version, stamp, old_stamp,
    moved)."""
    seq, kind, path, old_path, blob, base, size, mtime_ns, mode, origin, origin_seq = row[:11]
    version, old_version, base_version, stamp, old_stamp, moved = row[11:]
    if kind == Kind.RENAME and not old_path:
        kind = Kind.CREATE  # recorded so by an earlier version: sent as peers accept it
    return {
        "seq": seq,
        "kind": kind,
        "path": path,
        "old_path": old_path,
        "blob": bytes(blob) if blob is not None else None,
        "base": bytes(base) if base is not None else None,
        "size": size,
        "mtime_ns": mtime_ns,
        "mode": mode,
        "origin": bytes(origin),
        "origin_seq": origin_seq,
        "version": _vector_to_wire(unpack(version)),
        "old_version": _vector_to_wire(unpack(old_version)) if kind == Kind.RENAME else [],
        "base_version": _vector_to_wire(unpack(base_version)),
        "stamp": list(unpack_stamp(stamp)),
        "old_stamp": list(unpack_stamp(old_stamp)),
        "moved": bool(moved),
    }


def _vector_to_wire(v: Vector) -> list[list]:
    return [[origin, number] for origin, number in v]


def entry_to_wire(entry: Entry, seq: int) -> dict:
    """An entry as a snapshot event: a create of its content, or a tombstone's delete.

    It carries the path's version, so a peer whose version includes it skips it: a
    version it deleted since does not come back."""
    deleted = entry.blob_hash is None
    return {
        "seq": seq,
        "kind": Kind.DELETE if deleted else Kind.CREATE,
        "path": entry.path,
        "old_path": "",
        "blob": None if deleted else bytes(entry.blob_hash),
        "base": bytes(entry.deleted_hash) if deleted else None,
        "size": 0 if deleted else entry.size,
        "mtime_ns": entry.mtime_ns,
        "mode": entry.mode,
        "origin": bytes(entry.origin),
        "origin_seq": 0,  # a state, not a change
        "version": _vector_to_wire(unpack(entry.version)),
        "known": _vector_to_wire(unpack(entry.known)),
        "base_version": _vector_to_wire(unpack(entry.deleted_version)) if deleted else [],
        "stamp": list(unpack_stamp(entry.stamp)),
        "moved": entry.moved,
    }


def _hash(value, what: str, optional: bool) -> bytes | None:
    if value is None and optional:
        return None
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise BadData(f"bad {what} hash")
    return value


def _int(value, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadData(f"bad {what}")
    return value


def event_from_wire(data, snapshot: bool = False) -> RemoteEvent:
    if not isinstance(data, dict):
        raise BadData("an event must be a map")
    kind = data.get("kind")
    if kind not in KINDS:
        raise BadData(f"unknown event kind {kind!r}")
    try:
        path = check_relative_path(data.get("path"))
        old_path = check_relative_path(data["old_path"]) if kind == Kind.RENAME else ""
    except (ValueError, KeyError) as exc:
        raise BadData(f"refused path: {exc}") from None
    deleting = kind == Kind.DELETE
    blob = _hash(data.get("blob"), "blob", optional=deleting)
    if deleting and blob is not None:
        raise BadData("a delete carries no blob")
    return RemoteEvent(
        seq=_int(data.get("seq"), "sequence number", 0, 1 << 62),
        kind=kind,
        path=path,
        old_path=old_path,
        blob=blob,
        base=_hash(data.get("base"), "base", optional=True),
        size=_int(data.get("size"), "size", 0, MAX_FILE_SIZE),
        mtime_ns=_int(data.get("mtime_ns"), "mtime", -(1 << 62), 1 << 62),
        mode=_int(data.get("mode"), "mode", 0, 0o7777),
        origin=_hash(data.get("origin"), "origin", optional=False),
        origin_seq=_int(data.get("origin_seq"), "origin sequence number", 0, 1 << 62),
        version=_vector(data.get("version")),
        old_version=_vector(data.get("old_version")) if kind == Kind.RENAME else (),
        known=_vector(data.get("known", []), optional=True),
        base_version=_vector(data.get("base_version", []), optional=True),
        stamp=_stamp(data.get("stamp", [0, b""])),
        old_stamp=_stamp(data.get("old_stamp", [0, b""])),
        moved=_bool(data.get("moved", False), "moved"),
        snapshot=snapshot,
    )


def _vector(data, optional: bool = False) -> Vector:
    """A version vector: a change without one could never be told from a late copy."""
    if not isinstance(data, list) or not (0 if optional else 1) <= len(data) <= MAX_ITEMS:
        raise BadData("bad version")
    found = []
    for item in data:
        if not isinstance(item, list) or len(item) != 2:
            raise BadData("bad version item")
        found.append((_hash(item[0], "origin", False), _int(item[1], "version number", 1, 1 << 62)))
    return vector(found)


def _bool(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadData(f"bad {what}")
    return value


def _stamp(data) -> Stamp:
    if not isinstance(data, list) or len(data) != 2:
        raise BadData("bad stamp")
    when, blob = data
    if blob == b"":
        return (_int(when, "stamp time", 0, 0), b"")
    return (_int(when, "stamp time", -(1 << 62), 1 << 62), _hash(blob, "stamp", False))


def chunk_list_from_wire(data, size: int, base: list[ChunkRef] | None = None) -> list[ChunkRef]:
    """A chunk list from its wire form: [hash, length] items, and, against a base list the
    receiver has, [start, count] runs of that base's chunks."""
    if not isinstance(data, list) or len(data) > MAX_CHUNKS:
        raise BadData("a chunk list must be a list")
    chunks, offset = [], 0
    for item in data:
        if not isinstance(item, list) or len(item) != 2:
            raise BadData("bad chunk list entry")
        if isinstance(item[0], int) and base is not None:
            start = _int(item[0], "run start", 0, len(base))
            count = _int(item[1], "run length", 1, len(base) - start)
            run = base[start : start + count]
        else:
            run = [ChunkRef(_hash(item[0], "chunk", optional=False), 0, 0)]
            run = [ChunkRef(run[0].hash, 0, _int(item[1], "chunk length", 1, MAX_SIZE))]
        for c in run:
            chunks.append(ChunkRef(c.hash, offset, c.length))
            offset += c.length
        if offset > size or len(chunks) > MAX_CHUNKS:
            raise BadData("chunk list does not add up to the blob's size")
    if offset != size:
        raise BadData("chunk list does not add up to the blob's size")
    return chunks


def chunk_window_to_wire(chunks: list[ChunkRef]) -> dict:
    """A run of a chunk list: where its first chunk starts, then [hash, length] items."""
    return {"at": chunks[0].offset if chunks else 0, "chunks": [[c.hash, c.length] for c in chunks]}


def chunk_window_from_wire(data, size: int, offset: int, length: int) -> list[ChunkRef]:
    """A run of a blob's chunk list that must hold all of [offset, offset + length) that
    lies within the blob."""
    if not isinstance(data, dict) or not isinstance(data.get("chunks"), list):
        raise BadData("a chunk window must be a map")
    at = _int(data.get("at"), "window start", 0, size)
    items = data["chunks"]
    if len(items) > MAX_CHUNKS:
        raise BadData("a chunk window is too long")
    chunks, position = [], at
    for item in items:
        if not isinstance(item, list) or len(item) != 2:
            raise BadData("bad chunk window entry")
        n = _int(item[1], "chunk length", 1, MAX_SIZE)
        chunks.append(ChunkRef(_hash(item[0], "chunk", optional=False), position, n))
        position += n
    end = min(size, offset + length)
    if position > size or (offset < end and not (at <= offset and position >= end)):
        raise BadData("a chunk window does not hold the range asked for")
    return chunks


def chunk_list_to_wire(chunks: list[ChunkRef], base: list[ChunkRef] | None = None) -> list[list]:
    """The wire form of a chunk list; against a base list, runs of the base go as [start, count].

    An edit of a large file then sends a few runs, not every chunk."""
    if not base:
        return [[c.hash, c.length] for c in chunks]
    where: dict[bytes, int] = {}
    for i, c in enumerate(base):
        where.setdefault(c.hash, i)
    out: list[list] = []
    for c in chunks:
        last = out[-1] if out else None
        if last and isinstance(last[0], int):
            following = last[0] + last[1]
            if following < len(base) and base[following].hash == c.hash:
                last[1] += 1
                continue
        if c.hash in where:
            out.append([where[c.hash], 1])
        else:
            out.append([c.hash, c.length])
    return out
