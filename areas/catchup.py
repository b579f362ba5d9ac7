"""Catching up when a peer connects: a consensus with it in every area it shares where it
has not applied all of this peer's history.

Automatic runs (after local changes, areas.watcher) go to the peers connected at that
moment: a peer that was away (switched off, out of reach, peerd restarting) missed them,
and so did one whose run failed half-way. When it connects again, the changes it lacks are
sent at once instead of waiting for the next change or window. Both sides check for
themselves: each catches the other up on its own history. Only a peer that synced the area
before is caught up so: a peer joining an area starts as it always did.
"""

import logging

from django.db.models import Q

from peers.models import Peer
from peers.sync import db

from .consensus import request_consensus
from .models import Area, PeerArea

log = logging.getLogger(__name__)
TRIGGER = "reconnect"
ASK_TIMEOUT = 30.0


async def peer_connected(conn) -> None:
    """Called by peerd for each connection made (either way) with a household peer."""
    try:
        names = await conn.call("areas", {}, timeout=ASK_TIMEOUT)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("bad answer to areas")
        started = await db(catch_up, conn.peer_key, names)
    except Exception as exc:  # noqa: BLE001 - the next change or window will do it
        log.info("no catch-up consensus with %s: %s", conn.peer_name, exc)
        return
    for name in started:
        log.info("%s connected: consensus in %s, whose changes it lacks", conn.peer_name, name)


def catch_up(key: bytes, shared_names: list[str]) -> list[str]:
    """Queue a run with the peer for each of these areas (those it has) that the two have
    synced before and where its acknowledged cursor is behind this peer's history; the
    names of those areas. A peer new to an area is left to its first consensus (its own,
    or one asked for): which side pulls first then decides what its old files become."""
    peer = Peer.objects.filter(public_key=key).first()
    if peer is None:
        return []
    acked = dict(
        PeerArea.objects.filter(peer=peer, area__name__in=shared_names)
        .filter(Q(pulled_seq__gt=0) | Q(acked_seq__gt=0))
        .values_list("area_id", "acked_seq")
    )
    started = []
    for area in Area.objects.filter(pk__in=acked):
        if acked[area.pk] < area.history_seq:
            request_consensus(area, peer, TRIGGER)
            started.append(area.name)
    return started
