"""Who a peer is: its key pair, its readable id, TLS contexts, addresses."""

from peers.identity.address import BadAddress, format_address, normalize_address, parse_address
from peers.identity.keys import Identity, IdentityMissing, create_identity, load_identity

__all__ = [
    "BadAddress",
    "Identity",
    "IdentityMissing",
    "create_identity",
    "format_address",
    "load_identity",
    "normalize_address",
    "parse_address",
]
