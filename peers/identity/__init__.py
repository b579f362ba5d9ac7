"""Who a peer is: its key pair, its readable id, the TLS contexts built on them, addresses."""

from peers.identity.keys import (
    Identity,
    IdentityMissing,
    create_identity,
    load_identity,
)

__all__ = ["Identity", "IdentityMissing", "create_identity", "load_identity"]
