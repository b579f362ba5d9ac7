"""An area's local history: every change, in order, with the peer it came from.

Peers read it from their cursor on; events every sharing peer has applied are trimmed.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Min

from .models import Area, HistoryEvent, PeerArea

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


def append(area: Area, changes: list[Change], origin: bytes) -> None:
    """Give the changes the area's next sequence numbers. Call inside a transaction."""
    if not changes:
        return
    with transaction.atomic():
        Area.objects.filter(pk=area.pk).update(history_seq=F("history_seq") + len(changes))
        last = Area.objects.values_list("history_seq", flat=True).get(pk=area.pk)
        first = last - len(changes) + 1
        HistoryEvent.objects.bulk_create(
            [
                HistoryEvent(
                    area=area,
                    seq=first + i,
                    kind=c.kind,
                    path=c.path,
                    old_path=c.old_path,
                    blob_hash=c.blob_hash,
                    base_hash=c.base_hash,
                    size=c.size,
                    mtime_ns=c.mtime_ns,
                    mode=c.mode,
                    origin=origin,
                )
                for i, c in enumerate(changes)
            ],
            batch_size=2000,
        )
        area.history_seq = last


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
