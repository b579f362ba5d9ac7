"""What each area is doing now, as the pages, the API and the mount's status show it: its
state (areas.states), and what this peer still needs of each connected peer's changes."""

from dataclasses import dataclass, field

from areas.index import busy_area_ids
from areas.lifecycle import unreal_left
from areas.models import Area, ConsensusRun, PeerArea
from areas.states import AreaState, Facts, area_state
from peers.client import ask_peerd
from peers.models import Peer

# A page waits this long at most for peerd's word (live events follow).
PEERD_WAIT = 1.0


def connected_peers(timeout: float = PEERD_WAIT) -> set[str] | None:
    """The household peers connected now; None when peerd does not answer."""
    told = ask_peerd("connections", timeout)
    if not isinstance(told, dict):
        return None
    return {name for name, state in told.items() if isinstance(state, dict) and "since" in state}


def states(areas: list[Area], connected: set[str] | None) -> dict[int, AreaState]:
    """Each area's state, by id, from a few queries for them all."""
    busy = busy_area_ids()
    going = ConsensusRun.objects.filter(
        area__in=areas, status__in=[ConsensusRun.Status.PENDING, ConsensusRun.Status.RUNNING]
    ).select_related("area")
    failing = ConsensusRun.objects.failing()
    kept = set(PeerArea.objects.filter(excluded=True).values_list("area_id", "peer__name"))
    active = set(Peer.objects.filter(paused=False).values_list("name", flat=True))
    found = {}
    for area in areas:
        runs = [r for r in going if r.area_id == area.pk]
        running = [r for r in runs if r.status == ConsensusRun.Status.RUNNING]
        shown = next((p for p in (r.progress() for r in running) if p is not None), None)
        sharing = None
        if connected is not None:
            sharing = len([n for n in connected & active if (area.pk, n) not in kept])
        facts = Facts(
            paused=area.paused,
            busy=area.pk in busy,
            running=tuple(sorted({r.peer_name for r in running})),
            percent=shown["percent"] if shown else None,
            pending=len(runs) - len(running),
            failures=tuple((r.peer_name, r.error) for r in failing if r.area_id == area.pk),
            connected=sharing,
            realizing=unreal_left(area) if area.realizing else None,
        )
        found[area.pk] = area_state(facts)
    return found


@dataclass
class Needed:
    """What this peer still has to take of one peer's changes of an area."""

    peer: str
    items: int
    bytes: int
    paths: list[tuple[str, str, int]] = field(default_factory=list)  # path, kind, size


def ask_needs(peer: str, area: str, since: int, listed: int = 0) -> dict | None:
    """The peer's answer to `needs` ({"items", "bytes"}, and "paths" when listed), or None
    when it cannot answer now."""
    args = {"area": area, "since": since, "listed": listed}
    told = ask_peerd("needs", PEERD_WAIT * 5, peer=peer, args=args)
    if not isinstance(told, dict):
        return None
    if not isinstance(told.get("items"), int) or not isinstance(told.get("bytes"), int):
        return None
    return told


def needed(area: Area, connected: set[str] | None, listed: int = 50) -> list[Needed]:
    """Of each connected peer sharing the area: what of its changes this peer has not taken
    yet, and the first so many paths."""
    if area.paused or not connected:
        return []
    shared = list(
        PeerArea.objects.filter(area=area).values_list("peer__name", "pulled_seq", "excluded")
    )
    cursors = {name: seq for name, seq, _ in shared}
    kept = {name for name, _, excluded in shared if excluded}
    peers = Peer.objects.filter(name__in=connected, paused=False).exclude(name__in=kept)
    found = []
    for peer in peers:
        told = ask_needs(peer.name, area.name, cursors.get(peer.name, 0), listed)
        if told is None or not told["items"]:
            continue
        paths = [
            (p[0], p[1], p[2])
            for p in told.get("paths") or []
            if isinstance(p, list) and len(p) == 3 and isinstance(p[0], str)
            and isinstance(p[1], str) and isinstance(p[2], int)
        ]  # fmt: skip
        found.append(Needed(peer.name, told["items"], told["bytes"], paths))
    return found
