"""peerd: the listener, connections to peers, the data links it serves, the local socket."""

from peers.daemon.connection import Connection
from peers.daemon.remote import ConnectionRemote
from peers.daemon.server import PeerDaemon
from peers.daemon.threads import db, slow, start_soon, waiting

__all__ = [
    "Connection",
    "ConnectionRemote",
    "PeerDaemon",
    "db",
    "slow",
    "start_soon",
    "waiting",
]
