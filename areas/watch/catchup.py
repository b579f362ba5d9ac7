"""Catching up when a peer connects: a run in each shared area where it lacks our history.

A peer that was away missed the automatic runs (areas.watch.watcher); each side catches the
other up on its own history at once.

A peer joining an area starts its first run itself, pulling first, if the other has history
there and is an established member or we have none. Who pulls first decides what a newcomer's
old files become (a file deleted elsewhere must not come back), so if both are new with
files, neither starts: the user asks.
"""

import logging

from areas.models import Area, ConsensusRun, PeerArea
from peers.daemon import db
from peers.models import Peer

log = logging.getLogger(__name__)
TRIGGER = "reconnect"
JOIN_TRIGGER = "join"
ASK_TIMEOUT = 30.0

# What a peer says of each area it has: (its history's last sequence number, whether it
# has synced the area with any peer).
States = dict[str, tuple[int, bool]]


async def peer_connected(conn) -> None:
    """Called by peerd for each connection made (either way) with a household peer."""
    try:
        states = parse_states(await conn.call("area-states", {}, timeout=ASK_TIMEOUT))
        started = await db(catch_up, conn.peer_key, states)
    except Exception as exc:  # noqa: BLE001 - the next change or window will do it
        log.info("no catch-up consensus with %s: %s", conn.peer_name, exc)
        return
    for name, trigger in started:
        why = "whose changes it lacks" if trigger == TRIGGER else "which this peer joins"
        log.info("%s connected: consensus in %s, %s", conn.peer_name, name, why)


def area_states(peer: Peer) -> dict[str, list]:
    """This peer's answer to `area-states` from `peer`: per area shared with it, [last history
    seq, synced with anyone]."""
    synced = set(PeerArea.objects.synced().values_list("area_id", flat=True))
    return {a.name: [a.history_seq, a.pk in synced] for a in Area.objects.shared_with(peer)}


def parse_states(answer) -> States:
    if not isinstance(answer, dict):
        raise ValueError("bad answer to area-states")
    states = {}
    for name, state in answer.items():
        if not (isinstance(name, str) and isinstance(state, list) and len(state) == 2):
            raise ValueError("bad answer to area-states")
        seq, synced = state
        if type(seq) is not int or seq < 0 or type(synced) is not bool:
            raise ValueError("bad answer to area-states")
        states[name] = (seq, synced)
    return states


def catch_up(key: bytes, states: States) -> list[tuple[str, str]]:
    """Queue runs with the peer: where its acked cursor is behind us, and where we join.

    Returns (area name, trigger) of each."""
    peer = Peer.objects.by_key(key)
    if peer is None:
        return []
    # Outside its consensus windows, an area waits for the next one (areas.windows).
    shared = [
        a for a in Area.objects.shared_with(peer).filter(name__in=states) if a.may_start_consensus()
    ]
    cursors = {
        pa.area_id: pa
        for pa in PeerArea.objects.synced().filter(peer=peer, area__in=shared)
    }
    synced_here = set(
        PeerArea.objects.synced().filter(area__in=shared).values_list("area_id", flat=True)
    )
    started = []
    for area in shared:
        theirs, they_synced = states[area.name]
        if area.pk in cursors:
            if cursors[area.pk].acked_seq < area.history_seq:
                started.append((area, TRIGGER))
        elif area.pk not in synced_here and theirs > 0:
            if they_synced or area.history_seq == 0:
                started.append((area, JOIN_TRIGGER))
    for area, trigger in started:
        ConsensusRun.objects.request(area, peer, trigger)
    return [(area.name, trigger) for area, trigger in started]
