"""An area's local history: every change, in order, with the peer it came from.

Peers read it from their cursor on; events every sharing peer has applied are trimmed.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Min
from django.utils import timezone

from areas.index.identities import pack_identities
from areas.index.sql import copy_rows, execute, rows
from areas.models import Area, HistoryEvent, PeerArea, SeenChange, SeenPrefix

EVENT_FIELDS = [
    "area", "seq", "kind", "path", "old_path", "blob_hash", "base_hash",
    "size", "mtime_ns", "mode", "origin", "origin_seq", "created_at", "also",
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
    # Identities of earlier changes folded into it (see areas.pull.applier.collapse).
    also: tuple[tuple[bytes, int], ...] = ()


def append(area: Area, changes: list[Change], local_key: bytes) -> None:
    """Give the changes the area's next sequence numbers and remember them as seen."""
    if not changes:
        return
    with transaction.atomic(savepoint=False):
        Area.objects.filter(pk=area.pk).update(history_seq=F("history_seq") + len(changes))
        last = Area.objects.values_list("history_seq", flat=True).get(pk=area.pk)
        first = last - len(changes) + 1
        now = timezone.now()
        rows = []
        for i, c in enumerate(changes):
            origin = c.origin or local_key
            origin_seq = c.origin_seq if c.origin else first + i
            # A rename without its source would be refused by every peer: it is a create.
            kind = Kind.CREATE if c.kind == Kind.RENAME and not c.old_path else c.kind
            rows.append(
                (
                    area.pk,
                    first + i,
                    kind,
                    c.path,
                    c.old_path,
                    c.blob_hash,
                    c.base_hash,
                    c.size,
                    c.mtime_ns,
                    c.mode,
                    origin,
                    origin_seq,
                    now,
                    pack_identities(c.also) if c.origin else None,
                )
            )
        copy_rows(HistoryEvent, EVENT_FIELDS, rows)
        _mark_entries(area, rows)
        # A change made here is known as seen by its origin (see seen): no row for it.
        mark_seen(area, [(r[10], r[11]) for c, r in zip(changes, rows, strict=True) if c.origin])
        area.history_seq = last


def _mark_entries(area: Area, rows: list[tuple]) -> None:
    """Give each path these changes touched the identity of the last one (Entry.change_seq).

    A rename marks its source too, with where its content went. A put records
    the content it replaced: a version older than this one (Entry.base_hash)."""
    last: dict[str, tuple[bytes, int, str, bytes | None, bool]] = {}
    for row in rows:
        kind, path, old_path, blob, base = row[2], row[3], row[4], row[5], row[6]
        origin, origin_seq = row[10], row[11]
        if kind == Kind.RENAME and old_path:
            last[old_path] = (origin, origin_seq, path, None, False)
        last[path] = (origin, origin_seq, "", base, blob is not None)
    marks = list(zip(*last.values(), strict=True)) if last else [[]] * 5
    execute(
        "UPDATE areas_entry e SET change_origin = u.origin, change_seq = u.origin_seq,"
        " moved_to = CASE WHEN u.moved_to <> '' THEN u.moved_to ELSE e.moved_to END,"
        " base_hash = CASE WHEN u.put THEN u.base ELSE e.base_hash END"
        " FROM unnest(%b::text[], %b::bytea[], %b::bigint[], %b::text[], %b::bytea[],"
        " %b::bool[]) AS u(path, origin, origin_seq, moved_to, base, put)"
        " WHERE e.area_id = %s AND e.path = u.path",
        [list(last), *[list(m) for m in marks], area.pk],
    )


def floor(area: Area) -> int:
    """The highest sequence number already trimmed: history after it is complete."""
    lowest = HistoryEvent.objects.filter(area=area).aggregate(low=Min("seq"))["low"]
    return (lowest - 1) if lowest is not None else area.history_seq


def trim(area: Area) -> int:
    """Delete the events that every peer sharing the area has applied."""
    acks = list(PeerArea.objects.filter(area=area).values_list("acked_seq", flat=True))
    if not acks:
        return 0
    deleted, _ = HistoryEvent.objects.filter(area=area, seq__lte=min(acks)).delete()
    return deleted


def seen(area: Area, ids: list[tuple[bytes, int]], local_key: bytes) -> set[tuple[bytes, int]]:
    """Which of these change identities this peer has already applied or made.

    Its own changes (origin `local_key`) have no seen rows: they are all seen."""
    made = {(o, n) for o, n in ids if o == local_key}
    prefixes = {
        bytes(o): upto for o, upto in SeenPrefix.objects.filter(area=area).values_list(
            "origin", "upto")
    }  # fmt: skip
    made |= {(o, n) for o, n in ids if n <= prefixes.get(o, 0)}
    ids = [i for i in ids if i not in made]
    if not ids:
        return made
    found = rows(
        "SELECT s.origin, s.origin_seq FROM areas_seenchange s"
        " JOIN unnest(%b::bytea[], %b::bigint[]) AS i(origin, origin_seq)"
        " ON s.origin = i.origin AND s.origin_seq = i.origin_seq WHERE s.area_id = %s",
        [[o for o, _ in ids], [n for _, n in ids], area.pk],
    )
    return made | {(bytes(o), n) for o, n in found}


def mark_seen(area: Area, ids: list[tuple[bytes, int]]) -> None:
    copy_rows(
        SeenChange,
        ["area", "origin", "origin_seq"],
        ((area.pk, o, n) for o, n in ids),
        ignore_conflicts=True,
    )


def mark_prefixes(area: Area, events) -> None:
    """After a snapshot is applied, whole: each origin's changes up to the latest it carried
    are known here (SeenPrefix)."""
    latest: dict[bytes, int] = {}
    for e in events:
        if e.origin_seq > latest.get(e.origin, 0):
            latest[e.origin] = e.origin_seq
    for origin, upto in latest.items():
        found, made = SeenPrefix.objects.get_or_create(
            area=area, origin=origin, defaults={"upto": upto}
        )
        if not made and found.upto < upto:
            SeenPrefix.objects.filter(pk=found.pk, upto__lt=upto).update(upto=upto)
