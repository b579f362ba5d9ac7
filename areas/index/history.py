"""An area's local history: every change, in order, with the peer it came from.

Peers read it from their cursor on; events every sharing peer has applied are trimmed.
"""

from dataclasses import dataclass, replace

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from areas import events
from areas.index.sql import copy_rows, execute, rows
from areas.index.versions import (
    NO_STAMP,
    Stamp,
    Vector,
    bump,
    merge,
    pack,
    pack_known,
    pack_stamp,
    unpack,
    unpack_known,
    unpack_stamp,
)
from areas.models import HISTORY_CHANNEL, Area, Conflict, HistoryEvent, PeerArea

EVENT_FIELDS = [
    "area", "seq", "kind", "path", "old_path", "blob_hash", "base_hash",
    "size", "mtime_ns", "mode", "origin", "origin_seq", "created_at", "version",
    "old_version", "base_version", "stamp", "old_stamp", "moved",
]  # fmt: skip

Kind = HistoryEvent.Kind


@dataclass
class Change:
    kind: str
    path: str
    blob_hash: bytes | None
    base_hash: bytes | None
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0o644
    old_path: str = ""
    # The change's identity when it came from a peer; None for a change made here.
    origin: bytes | None = None
    origin_seq: int | None = None
    # A peer's change: what it carried (areas.index.wire.RemoteEvent). A change made here
    # gets its own from the path (see append), but for a conflict copy's, given here: every
    # peer that makes the same copy gives it the same.
    version: Vector = ()
    old_version: Vector = ()
    base_version: Vector = ()
    stamp: Stamp = NO_STAMP
    old_stamp: Stamp = NO_STAMP
    # A part of a peer's rename, recorded alone.
    moved: bool = False


def append(area: Area, changes: list[Change], local_key: bytes) -> None:
    """Give the changes the area's next sequence numbers.

    A change made here also moves its paths on (Entry.version and the rest): see _own.
    A peer's change keeps what it came with; the applier gives the entries theirs."""
    if not changes:
        return
    with transaction.atomic(savepoint=False):
        # Told to listeners once committed (HISTORY_CHANNEL).
        ((last, _),) = rows(
            "UPDATE areas_area SET history_seq = history_seq + %s WHERE id = %s"
            " RETURNING history_seq, pg_notify(%s, %s)",
            [len(changes), area.pk, HISTORY_CHANNEL, str(area.pk)],
        )
        first = last - len(changes) + 1
        now = timezone.now()
        own = _own(area, [(c, first + i) for i, c in enumerate(changes) if not c.origin], local_key)
        records = []
        for i, c in enumerate(changes):
            seq = first + i
            # A rename without its source would be refused by every peer: it is a create.
            kind = Kind.CREATE if c.kind == Kind.RENAME and not c.old_path else c.kind
            made = own.get(seq, c)
            records.append(
                (
                    area.pk,
                    seq,
                    kind,
                    c.path,
                    c.old_path,
                    c.blob_hash,
                    c.base_hash,
                    c.size,
                    c.mtime_ns,
                    c.mode,
                    c.origin or local_key,
                    c.origin_seq if c.origin else seq,
                    now,
                    pack(made.version),
                    pack(made.old_version) if kind == Kind.RENAME else None,
                    pack(made.base_version) or None,
                    pack_stamp(made.stamp) or None,
                    pack_stamp(made.old_stamp) if kind == Kind.RENAME else None,
                    c.moved and kind != Kind.RENAME,
                )
            )
        copy_rows(HistoryEvent, EVENT_FIELDS, records)
        area.history_seq = last
        Conflict.objects.settle(area, changes, now)
        events.history_changed(area.name)


@dataclass
class _Path:
    version: Vector
    known: Vector
    stamp: Stamp
    moved: bool = False


def _own(area: Area, own: list[tuple[Change, int]], local_key: bytes) -> dict[int, Change]:
    """What changes made here give their paths, saved on the entries (seq -> the change
    with its versions).

    Each change's version includes every change of the path decided here, and its own
    number; a delete's and a rename's source remember the version they took away. A
    path's stamp is the strongest content it ever had: its own, a renamed file's."""
    paths = {p for c, _ in own for p in (c.path, c.old_path) if p}
    if not paths:
        return {}
    state = {
        path: _Path(unpack(v), unpack_known(k, unpack(v)), unpack_stamp(st))
        for path, v, k, st in rows(
            "SELECT path, version, known, stamp FROM areas_entry"
            " WHERE area_id = %s AND path = ANY(%s)",
            [area.pk, list(paths)],
        )
    }
    empty = _Path((), (), NO_STAMP)
    deleted: dict[str, Vector] = {}
    found = {}
    for c, seq in own:
        target = state.get(c.path, empty)
        base_version = ()
        if c.kind == Kind.DELETE:
            base_version = deleted[c.path] = target.version
            state[c.path] = _bumped(target, local_key, seq, target.stamp)
        elif c.version:  # a conflict copy
            state[c.path] = _Path(c.version, merge(target.known, c.version), c.stamp)
        else:
            stamp = max(target.stamp, (c.mtime_ns, c.blob_hash or b""))
            if c.old_path:
                # The moved file's history joins the new path's (its stamp is the
                # stronger); the source's tombstone keeps its own (old_stamp).
                source = state.get(c.old_path, empty)
                base_version = deleted[c.old_path] = source.version
                stamp = max(stamp, source.stamp)
                state[c.old_path] = _bumped(source, local_key, seq, source.stamp, moved=True)
            state[c.path] = _bumped(target, local_key, seq, stamp, moved=bool(c.old_path))
        old = state[c.old_path] if c.old_path else empty
        found[seq] = replace(c, version=state[c.path].version, old_version=old.version,
                             base_version=base_version, stamp=state[c.path].stamp,
                             old_stamp=old.stamp)  # fmt: skip
    execute(
        "UPDATE areas_entry e SET version = u.version, known = u.known, stamp = u.stamp,"
        " moved = u.moved,"
        " deleted_version = CASE WHEN u.gone THEN u.deleted ELSE e.deleted_version END"
        " FROM unnest(%b::text[], %b::bytea[], %b::bytea[], %b::bytea[], %b::bool[],"
        " %b::bool[], %b::bytea[]) AS u(path, version, known, stamp, moved, gone, deleted)"
        " WHERE e.area_id = %s AND e.path = u.path",
        [
            list(state),
            [pack(p.version) for p in state.values()],
            [pack_known(p.known, p.version) for p in state.values()],
            [pack_stamp(p.stamp) for p in state.values()],
            [p.moved for p in state.values()],
            [path in deleted for path in state],
            [pack(deleted.get(path, ())) for path in state],
            area.pk,
        ],
    )
    return found


def _bumped(path: _Path, local_key: bytes, seq: int, stamp: Stamp, moved: bool = False) -> _Path:
    version = bump(path.known, local_key, seq)
    return _Path(version, version, stamp, moved)


def floor(area: Area) -> int:
    """The highest sequence number already trimmed: history after it is complete."""
    lowest = HistoryEvent.objects.filter(area=area).aggregate(low=Min("seq"))["low"]
    return (lowest - 1) if lowest is not None else area.history_seq


def trim(area: Area) -> int:
    """Delete the events that every peer sharing the area has applied, but the latest
    REALIZE_HISTORY_KEPT (the area's feed of recent changes). One it is kept from is not
    waited for: shared again, it gets a snapshot, which carries every version and
    tombstone."""
    acks = list(
        PeerArea.objects.filter(area=area, excluded=False).values_list("acked_seq", flat=True)
    )
    if not acks:
        return 0
    below = min(min(acks), area.history_seq - settings.REALIZE_HISTORY_KEPT)
    deleted, _ = HistoryEvent.objects.filter(area=area, seq__lte=below).delete()
    return deleted
