"""Version vectors: what each path's version descends from.

A version of a path carries, for every peer that changed the path, the number (in that
peer's history) of its latest change the version includes. One version descends from
another when it includes all of it; two versions neither of which includes the other were
made apart, and are a conflict. Only this tells a late copy of a version from a new one,
however the change travelled: directly, through another peer, or in a snapshot.
"""

import hashlib
import struct

ORIGIN_BYTES = 32
_RECORD = struct.Struct(f">{ORIGIN_BYTES}sq")
# A path's vector has one item per peer that ever changed it: a household's size.
MAX_ITEMS = 256

# (origin, number) pairs, sorted by origin, numbers above 0.
Vector = tuple[tuple[bytes, int], ...]
EMPTY: Vector = ()


def vector(items) -> Vector:
    found: dict[bytes, int] = {}
    for origin, number in items:
        if number > found.get(origin, 0):
            found[origin] = number
    return tuple(sorted(found.items()))


def includes(a: Vector, b: Vector) -> bool:
    """Whether version `a` includes version `b` (descends from it, or is it)."""
    mine = dict(a)
    return all(mine.get(origin, 0) >= number for origin, number in b)


def merge(a: Vector, b: Vector) -> Vector:
    """The least version including both."""
    return vector((*a, *b))


def beyond(a: Vector, b: Vector) -> Vector:
    """The part of `a` that `b` does not include: of versions joined in `a`, those a change
    made knowing `b` did not know."""
    return tuple((origin, n) for origin, n in a if not includes(b, ((origin, n),)))


def bump(a: Vector, origin: bytes, number: int) -> Vector:
    """The version a change made by `origin` (its number `number`) gives on top of `a`."""
    return vector((*a, (origin, number)))


def copied_to(v: Vector, path: str) -> Vector:
    """The version of a copy of version `v` made at `path` (a conflict copy).

    A version's numbers count changes at its own path; at another path, the same numbers
    would say which of that path's changes it includes. So each peer of `v` stands for
    itself at `path` under a name of its own. Every peer that makes the same copy makes
    the same version, and no change the path had before is taken for it."""
    at = b"\0" + path.encode()
    return vector((hashlib.sha256(origin + at).digest(), n) for origin, n in v)


def pack(v: Vector) -> bytes:
    return b"".join(_RECORD.pack(origin, number) for origin, number in v)


def unpack(data) -> Vector:
    if not data:
        return EMPTY
    data = bytes(data)
    return vector(_RECORD.unpack_from(data, i) for i in range(0, len(data), _RECORD.size))


# A stamp: the strongest content a path's version descends from, as (modification time,
# content hash); conflicts are decided by it (areas.pull.rules).
Stamp = tuple[int, bytes]
NO_STAMP: Stamp = (0, b"")
_STAMP_TIME = struct.Struct(">q")


def pack_stamp(stamp: Stamp) -> bytes:
    return _STAMP_TIME.pack(stamp[0]) + stamp[1] if stamp != NO_STAMP else b""


def unpack_stamp(data) -> Stamp:
    if not data:
        return NO_STAMP
    data = bytes(data)
    return (_STAMP_TIME.unpack_from(data)[0], data[_STAMP_TIME.size :])


def pack_known(known: Vector, version: Vector) -> bytes:
    """Entry.known: every version of a path decided here, stored only where it says more
    than the path's own version (most paths: nothing)."""
    return pack(known) if known != version else b""


def unpack_known(known, version: Vector) -> Vector:
    return unpack(known) or version
