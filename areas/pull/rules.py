"""What a peer's change does here: the sync rule, as a pure function.

Every version of a path carries a version vector (areas.index.versions). A change applies
when it includes this peer's version of the path, and does nothing when this peer has
decided on it already (it came late: through another peer, or in a snapshot). Otherwise
the two were made apart, a conflict, decided the same way on every peer whatever the
order the versions arrive in:
- both have content: the stronger keeps the path, the other goes beside it as a conflict
  copy named after its peer and time. Stronger: the one whose history at this path holds
  the content with the later modification time (its stamp), then its own time, then the
  larger hash. A copy gets the version it copies (moved to its own path), so peers
  making the same copy agree, and a copy deleted is not made again;
- one side deleted, the other changed: the change wins (nothing is lost), noted as a
  conflict, unless the content deleted would have beaten it: then it goes to a copy;
- both reached the same content: one version, no conflict.
The path then knows both, so neither acts again.

A rename is a delete of its source and a put at its target, each decided so; where both
apply and the source holds the moved content, the file is moved.

`decide` looks at versions and returns steps; the applier (areas.pull.applier) carries
them out on disk and in the database.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import PurePosixPath

from areas.index import Kind, RemoteEvent
from areas.index.versions import NO_STAMP, Stamp, Vector, beyond, copied_to, includes, merge
from peers.identity import peer_id

DELETED_HERE = "deleted here, changed on the peer: kept the change"
CHANGED_HERE = "deleted on the peer, changed here: kept"
THEIRS_NEWER = "changed on both sides: the newer version kept the path"
MINE_NEWER = "changed on both sides: this version kept the path"
MOVED_DELETED_HERE = "deleted here, moved on the peer: kept the moved file"
MOVED_CHANGED_HERE = "changed here, moved on the peer: kept both"


@dataclass(frozen=True)
class Version:
    """This peer's version of a path, as the index knows it.

    `version`: the vector of the change that made what is here. `known`: every change
    of the path decided here (it includes `version`).
    `gone`: a tombstone; `blob`, `mtime_ns` and `deleted_version` are then the content
    deleted (its version () where not known)."""

    blob: bytes | None
    mode: int = 0o644
    mtime_ns: int = 0
    origin: bytes = b""
    gone: bool = False
    version: Vector = ()
    known: Vector = ()
    deleted_version: Vector = ()
    stamp: Stamp = NO_STAMP
    # Made by a move (a rename's new path, or the tombstone of its old one).
    moved: bool = False


@dataclass(frozen=True)
class Deleted:
    """The content a tombstone deleted: a change made apart from the delete is weighed
    against it, as it would have been had it arrived first."""

    blob: bytes | None
    mtime_ns: int
    version: Vector
    stamp: Stamp = NO_STAMP


class Do(StrEnum):
    SET_STATUS = "set-status"  # the same content: give it the change's mode and mtime
    WRITE = "write"  # put the change's content at the path
    DELETE = "delete"  # remove the file (or move it aside to `copy`)
    # Rename `source` to path: over the version there that it replaces (`base`, or `kept`
    # once set aside to `copy`, if not copied before).
    MOVE = "move"
    KEEP = "keep"  # nothing on disk: the path (a tombstone if nothing is here) takes `version`
    THEIRS_WIN = "theirs-win"  # move this version aside to `copy`, write theirs at the path
    MINE_WIN = "mine-win"  # keep this version (or tombstone), write theirs at `copy`


@dataclass(frozen=True)
class Step:
    do: Do
    path: str
    # The path's vectors after the step (Version.version and .known), and its stamp.
    version: Vector = ()
    known: Vector = ()
    stamp: Stamp = NO_STAMP
    # WRITE: how the history records the change, and the base it records.
    kind: str | None = None
    base: bytes | None = None
    # The conflict copy's name (THEIRS_WIN, MINE_WIN, DELETE), and its version: that of the
    # version copied, at the copy's path, so every peer that makes the same copy makes the
    # same version.
    copy: str = ""
    copy_version: Vector = ()
    copy_stamp: Stamp = NO_STAMP
    # A conflict to record, and the version here it kept (None: none was here).
    conflict: str = ""
    kept: bytes | None = None
    # MOVE: the path moved from, and its tombstone's vectors.
    source: str = ""
    source_version: Vector = ()
    source_known: Vector = ()
    # DELETE, KEEP of a tombstone, MOVE's source: what the tombstone deleted.
    deleted: Deleted | None = None
    # The file written or moved to the path is this peer's own change (a conflict copy).
    own: bool = False
    # The path's state after the step was made by a move (Version.moved).
    moved: bool = False


Here = Callable[[str], Version | None]


def decide(change: RemoteEvent, here: Here, local_key: bytes) -> list[Step]:
    """The steps that apply `change`; `here(path)` is this peer's version of a path, a
    tombstone, or None (nothing known there). No step: nothing to do."""
    if change.kind == Kind.RENAME:
        return _rename(change, here, local_key)
    if change.kind == Kind.DELETE:
        gone = Deleted(change.base, change.mtime_ns, change.base_version, change.stamp)
        return _delete(change, change.path, change.version, _known(change), gone, here)
    return _put(change, here, local_key)


def news(change: RemoteEvent, here: Here) -> bool:
    """Whether the change brings a version this peer has not decided on yet."""
    parts = [(change.path, change.version)]
    if change.kind == Kind.RENAME:
        parts.append((change.old_path, change.old_version))
    return any(_new(here(path), version) for path, version in parts)


def _new(was: Version | None, version: Vector) -> bool:
    return was is None or not includes(was.known, version)


def _by_move(change: RemoteEvent) -> bool:
    """Whether the change moved content (a rename, or a part of one relayed)."""
    return change.kind == Kind.RENAME or change.moved


def _known(change: RemoteEvent) -> Vector:
    """What the change's side had decided of its path (a snapshot's state may know more
    than the change that made it)."""
    return merge(change.version, change.known)


def _delete(
    change: RemoteEvent, path: str, version: Vector, theirs: Vector, gone: Deleted, here: Here
) -> list[Step]:
    """`version`: the tombstone's; `theirs`: what its side had decided of the path; `gone`:
    the content it deleted."""
    was = here(path)
    if not _new(was, version):
        return []
    moved = _by_move(change)
    if was is None:
        # Remembered, so the version deleted there does not come back with a late copy.
        return [Step(Do.KEEP, path, version, theirs, gone.stamp, deleted=gone, moved=moved)]
    known = merge(was.known, theirs)
    if was.gone:
        # Deleted on both sides: the tombstones remember the same content everywhere.
        mine = Deleted(was.blob, was.mtime_ns, was.deleted_version, was.stamp)
        kept = gone if _beats(gone, mine) else mine
        merged = merge(was.version, version)
        return [Step(Do.KEEP, path, merged, known, kept.stamp, deleted=kept, moved=was.moved)]
    if includes(theirs, was.version) or _same_content(
        change, was, gone.blob, was.version, gone.version
    ):
        # The delete was made knowing this version (or this very content).
        if not gone.version:
            gone = Deleted(was.blob, was.mtime_ns, was.version, was.stamp)
        return [Step(Do.DELETE, path, version, known, gone.stamp, base=was.blob, deleted=gone,
                     moved=moved)]  # fmt: skip
    mine = Deleted(was.blob, was.mtime_ns, was.version, was.stamp)
    note = "" if change.snapshot else CHANGED_HERE
    if gone.version and not includes(was.known, gone.version) and _beats(gone, mine):
        # Made apart from the content deleted there, which would have kept the path: this
        # version goes beside it, as a conflict copy, and the delete stands. Not if that
        # content was weighed here before (`known`): a version kept then stays kept.
        copy, copied = _copy(here, path, was.origin, was)
        return [Step(Do.DELETE, path, version, known, gone.stamp, base=was.blob, deleted=gone,
                     copy=copy, copy_version=copied, copy_stamp=was.stamp, conflict=note,
                     kept=was.blob, moved=moved)]  # fmt: skip
    # Changed here without knowing of the delete: the change stays, as the part of its
    # version the delete did not know (two versions joined here, one deleted: the other).
    kept = was.blob if note else None
    left = beyond(was.version, theirs)
    return [Step(Do.KEEP, path, left, known, was.stamp, conflict=note, kept=kept,
                 moved=was.moved)]  # fmt: skip


def _same_content(
    change: RemoteEvent, was: Version, blob: bytes | None, live: Vector, deleted: Vector
) -> bool:
    """Two versions made apart with the same content, neither by a move (a peer that joined
    with an old copy of the area, say): taken for one, so a delete of either takes both.
    `live`: the version kept on one side; `deleted`: the one deleted on the other.

    A move is left out: the content it moved in or out is another file's, which a delete
    of this one does not touch. So is a version made from the one deleted: a change."""
    if deleted and includes(live, deleted):
        return False
    return was.blob == blob and not (_by_move(change) or was.moved)


def _put(change: RemoteEvent, here: Here, local_key: bytes, note: str = "") -> list[Step]:
    path, version = change.path, change.version
    was = here(path)
    if not _new(was, version):
        return []
    theirs, stamp, moved = _known(change), change.stamp, _by_move(change)
    if was is None:
        return [Step(Do.WRITE, path, version, theirs, stamp, kind=Kind.CREATE, conflict=note,
                     moved=moved)]  # fmt: skip
    known = merge(was.known, theirs)
    after = includes(theirs, was.version)  # made knowing the version here
    if was.gone:
        gone = Deleted(was.blob, was.mtime_ns, was.deleted_version, was.stamp)
        if not after and _same_content(change, was, change.blob, version, was.deleted_version):
            # The very content deleted here, made apart: the delete stands (a peer holding
            # it deletes it too, see _delete).
            return [Step(Do.KEEP, path, was.version, known, was.stamp, deleted=gone)]
        if not after and gone.version and not includes(theirs, gone.version):
            if _beats(gone, Deleted(change.blob, change.mtime_ns, version, change.stamp)):
                # Made apart from the content deleted here, which would have kept the path:
                # it goes beside it, as a conflict copy, and the delete stands.
                return _copy_theirs(change, here, was, known, note or DELETED_HERE, gone)
        note = note or ("" if after else DELETED_HERE)
        return [Step(Do.WRITE, path, version, known, stamp, kind=Kind.CREATE, conflict=note,
                     moved=moved)]  # fmt: skip
    if was.blob == change.blob:
        both = version if after else merge(was.version, version)
        stamp = stamp if after else max(stamp, was.stamp)
        moved = moved if after else was.moved
        if (was.mode, was.mtime_ns) != (change.mode, change.mtime_ns):
            if after or _wins(change, was):
                return [Step(Do.SET_STATUS, path, both, known, stamp, moved=moved)]
        return [Step(Do.KEEP, path, both, known, stamp, moved=moved)]
    if after:
        # Made from the version here: it replaces it.
        kind = Kind.OVERWRITE if change.kind == Kind.RENAME else change.kind
        return [Step(Do.WRITE, path, version, known, stamp, kind=kind, base=was.blob,
                     conflict=note, moved=moved)]  # fmt: skip
    # Made apart, both with content: one version keeps the path everywhere.
    if _wins(change, was):
        copy, copied = _copy(here, path, was.origin or local_key, was)
        return [Step(Do.THEIRS_WIN, path, version, known, stamp, copy=copy,
                     copy_version=copied, copy_stamp=was.stamp,
                     conflict=note or THEIRS_NEWER, kept=was.blob, moved=moved)]  # fmt: skip
    return _copy_theirs(change, here, was, known, note or MINE_NEWER)


def _copy_theirs(
    change: RemoteEvent, here: Here, was: Version, known: Vector, note: str, gone=None
) -> list[Step]:
    """The change's version goes to a conflict copy; the path keeps the version here."""
    path = change.path
    theirs = Version(change.blob, mtime_ns=change.mtime_ns, version=change.version,
                     stamp=change.stamp)
    copy, copied = _copy(here, path, change.origin, theirs)
    if not copy:
        return [Step(Do.KEEP, path, was.version, known, was.stamp, deleted=gone,
                     moved=was.moved)]  # fmt: skip
    return [Step(Do.MINE_WIN, path, was.version, known, was.stamp, copy=copy,
                 copy_version=copied, copy_stamp=change.stamp, conflict=note,
                 kept=None if was.gone else was.blob, deleted=gone,
                 moved=was.moved)]  # fmt: skip


def _copy(here: Here, path: str, origin: bytes, copied: Version) -> tuple[str, Vector]:
    """A conflict copy of a version at `path`: its name and its version, or ("", ()) when
    it was made here already (and maybe deleted since): not again.

    Its version is the version copied, moved to the copy's path (versions.copied_to):
    peers that make the same copy agree on it, and no change the copy's path had before is
    taken for it."""
    copy = _free(here, conflict_copy_path(path, origin, copied.mtime_ns), copied)
    version = copied_to(copied.version, copy)
    held = here(copy)
    if held is not None and includes(held.known, version):
        return "", ()
    return copy, version


def _rename(change: RemoteEvent, here: Here, local_key: bytes) -> list[Step]:
    """The source's delete and the target's put, each decided by its own version; a move
    where both apply and the source holds the content moved."""
    old = change.old_version
    moved = Deleted(change.blob, change.mtime_ns, change.base_version, change.old_stamp)
    source = _delete(change, change.old_path, old, old, moved, here)
    was = here(change.old_path)
    note = ""
    if was is not None and _new(was, change.old_version):
        if was.gone:
            note = MOVED_DELETED_HERE
        elif was.blob != change.blob:
            note = MOVED_CHANGED_HERE
    if source and source[0].do == Do.KEEP and source[0].conflict:
        source = [replace(source[0], conflict="", kept=None)]  # noted at the target
    target = _put(replace(change, base=None), here, local_key, note)
    moving = bool(source) and source[0].do == Do.DELETE and not source[0].copy
    moving = moving and was is not None
    moving = moving and was.blob == change.blob and not was.gone
    if not moving or not target or target[0].do not in (Do.WRITE, Do.THEIRS_WIN, Do.MINE_WIN):
        return [*source, *target]
    step, moved = target[0], source[0]
    if step.do == Do.MINE_WIN:
        # The moved file lands beside the version kept at the target, as its copy.
        return [Step(Do.MOVE, step.copy, step.copy_version, (), step.copy_stamp,
                     conflict=step.conflict, kept=step.kept, source=change.old_path,
                     source_version=moved.version, source_known=moved.known,
                     deleted=moved.deleted, own=True),
                Step(Do.KEEP, change.path, step.version, step.known, step.stamp,
                     deleted=step.deleted, moved=step.moved)]  # fmt: skip
    return [replace(step, do=Do.MOVE, kind=None, source=change.old_path,
                    source_version=moved.version, source_known=moved.known,
                    deleted=moved.deleted)]  # fmt: skip


def _live(here: Here, path: str) -> Version | None:
    version = here(path)
    return None if version is None or version.gone else version


def _wins(change: RemoteEvent, mine: Version) -> bool:
    """Of two versions made apart, whether the change's keeps the path: the stronger stamp,
    then the later modification time, then the larger content hash (the same on every
    peer, whatever the order they came in)."""
    theirs = Deleted(change.blob, change.mtime_ns, (), change.stamp)
    return _beats(theirs, Deleted(mine.blob, mine.mtime_ns, (), mine.stamp))


def _beats(a: Deleted, b: Deleted) -> bool:
    return (a.stamp, a.mtime_ns, a.blob or b"") > (b.stamp, b.mtime_ns, b.blob or b"")


def _free(here: Here, name: str, copied: Version) -> str:
    """A conflict copy's name: the first of name, name-1, ... that takes the copy."""
    p, n, found = PurePosixPath(name), 0, name
    while not _takes(here(found), copied, copied_to(copied.version, found)):
        n += 1
        found = str(p.with_name(f"{p.stem}-{n}{p.suffix}"))
    return found


def _takes(held: Version | None, copied: Version, version: Vector) -> bool:
    """Whether a copy of `copied`, of version `version`, may go where `held` is: nothing,
    the same content, or the copy itself made before (and maybe deleted since).

    Over a tombstone only if a peer holding that tombstone would take the copy too (see
    _put): not if the content deleted there is the copy's, or would have beaten it.
    Otherwise the peers that meet the copy there would set it aside once more."""
    if held is None or includes(held.known, version):
        return True
    if not held.gone:
        return held.blob == copied.blob
    if held.blob == copied.blob:
        return False
    deleted = Deleted(held.blob, held.mtime_ns, held.deleted_version, held.stamp)
    weighed = Deleted(copied.blob, copied.mtime_ns, copied.version, copied.stamp)
    return not (held.deleted_version and _beats(deleted, weighed))


def conflict_copy_path(path: str, origin: bytes, mtime_ns: int) -> str:
    """`name.sync-conflict-YYYYMMDD-HHMMSS-PEERID7.ext`: the version's time and peer."""
    p = PurePosixPath(path)
    when = datetime.datetime.fromtimestamp(mtime_ns / 1e9, tz=datetime.UTC)
    tag = f".sync-conflict-{when:%Y%m%d-%H%M%S}-{peer_id.encode(origin)[:7]}"
    return str(p.with_name(p.stem + tag + p.suffix)) if p.stem else path + tag
