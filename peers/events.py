"""Live household events, sent to open dashboards once the change is committed."""

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from peers.models import LocalPeer, Peer, Stranger

DASHBOARD_GROUP = "dashboard"
log = logging.getLogger(__name__)


class PeerRow(TypedDict):
    name: str
    peer_id: str
    address: str
    paused: bool


class LocalRow(TypedDict):
    name: str
    peer_id: str
    listen_address: str


class StrangerRow(TypedDict):
    peer_id: str
    address: str
    direction: str
    attempts: int
    last_seen: str


class HouseholdChanged(TypedDict):
    type: Literal["household.changed"]
    local: LocalRow | None
    peers: list[PeerRow]
    strangers: list[StrangerRow]


def household_snapshot() -> HouseholdChanged:
    local = LocalPeer.get()
    return HouseholdChanged(
        type="household.changed",
        local=LocalRow(name=local.name, peer_id=local.peer_id, listen_address=local.listen_address)
        if local
        else None,
        peers=[
            PeerRow(name=p.name, peer_id=p.peer_id, address=p.address, paused=p.paused)
            for p in Peer.objects.all()
        ],
        strangers=[
            StrangerRow(
                peer_id=s.peer_id,
                address=s.address,
                direction=s.direction,
                attempts=s.attempts,
                last_seen=s.last_seen.isoformat(),
            )
            for s in Stranger.objects.all()[:20]
        ],
    )


async def announce(message: dict) -> None:
    """send_to_dashboards, from an event loop (peerd's)."""
    try:
        await get_channel_layer().group_send(DASHBOARD_GROUP, message)
    except Exception as exc:  # noqa: BLE001 - a lost nudge: the next one comes soon
        log.debug("live event not sent (%s): %s", message.get("type"), exc)


def send_to_dashboards(message: dict) -> None:
    """Send now. The database stays the truth: if Redis is away, pages catch up on reload."""
    try:
        async_to_sync(get_channel_layer().group_send)(DASHBOARD_GROUP, message)
    except Exception as exc:  # noqa: BLE001 - a lost nudge must never undo a saved change
        log.warning("live event not sent (%s): %s", message.get("type"), exc)


def household_changed() -> None:
    """Tell dashboards the household changed, after the current transaction commits."""
    transaction.on_commit(lambda: send_to_dashboards(household_snapshot()))
