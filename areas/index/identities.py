"""Change identities (origin peer, number there) packed into bytes, for a history column."""

import struct

ORIGIN_BYTES = 32
_RECORD = struct.Struct(f">{ORIGIN_BYTES}sq")
# Of the changes folded into one, this many travel with it (the latest): enough for the
# chains between two exchanges, bounded so a history page stays within a frame.
MAX_ALSO = 32


def pack_identities(ids) -> bytes | None:
    ids = list(ids)[-MAX_ALSO:]
    return b"".join(_RECORD.pack(origin, seq) for origin, seq in ids) or None


def unpack_identities(data) -> list[tuple[bytes, int]]:
    if not data:
        return []
    data = bytes(data)
    return [_RECORD.unpack_from(data, i) for i in range(0, len(data), _RECORD.size)]
