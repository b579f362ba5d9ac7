"""Reaching peers from other processes: peerd's local socket, data links, a remote peer."""

from peers.client.links import Link, LinkFailed, Links
from peers.client.peerd import PeerdClient, PeerdUnavailable, ask_peerd
from peers.client.remote import Remote, RemotePeer
from peers.client.traffic import DIALLED, TrafficCounter

__all__ = [
    "DIALLED",
    "Link",
    "LinkFailed",
    "Links",
    "PeerdClient",
    "PeerdUnavailable",
    "Remote",
    "ask_peerd",
    "RemotePeer",
    "TrafficCounter",
]
