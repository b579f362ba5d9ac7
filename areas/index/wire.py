"""Area data as it crosses the wire, and the checks everything from a peer goes through."""

from dataclasses import dataclass

from areas.files import MAX_SIZE, ChunkRef, check_relative_path
from areas.index.history import Kind
from areas.index.identities import MAX_ALSO, unpack_identities
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
    # Identities of earlier changes of the path folded into this one (areas.pull.applier.collapse).
    also: tuple[tuple[bytes, int], ...] = ()
    # From a snapshot (the peer's history was trimmed): the state of a path, not a change.
    snapshot: bool = False


def event_row_to_wire(row: tuple) -> dict:
    """A history event from its row (seq, kind, path, old_path, blob_hash, base_hash, size,
    mtime_ns, mode, origin, origin_seq, also)."""
    seq, kind, path, old_path, blob, base, size, mtime_ns, mode, origin, origin_seq, also = row
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
        "also": [[o, n] for o, n in unpack_identities(also)],
    }


def entry_to_wire(entry: Entry, seq: int) -> dict:
    """An entry as a snapshot event: a create of its content, or a tombstone's delete.

    It carries the identity of the last change of the path, so a peer that applied that
    change skips it: a version it deleted since does not come back."""
    deleted = entry.blob_hash is None
    known = entry.change_seq > 0
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
        "origin": bytes(entry.change_origin) if known else bytes(entry.origin),
        "origin_seq": entry.change_seq if known else 0,  # 0: not known
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
        also=_identities(data.get("also", [])),
        snapshot=snapshot,
    )


def _identities(data) -> tuple[tuple[bytes, int], ...]:
    if not isinstance(data, list) or len(data) > MAX_ALSO:
        raise BadData("bad folded identities")
    found = []
    for item in data:
        if not isinstance(item, list) or len(item) != 2:
            raise BadData("bad folded identity")
        found.append((_hash(item[0], "origin", False), _int(item[1], "origin number", 1, 1 << 62)))
    return tuple(found)


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
