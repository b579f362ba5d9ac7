"""What a peer's change does here: the sync rule, as a pure function.

A change applies when its base is this peer's current version of the path. Otherwise:
- both sides changed the content: the version with the later mtime (then the larger origin
  key) keeps the path on every peer; the other is kept beside it as a conflict copy named
  after its peer and time, so every peer ends with the same two files;
- one side deleted, the other changed: the change wins (nothing is lost), noted as a conflict;
- both sides reached the same content: nothing to do.

A tombstone counts: a version deleted here never comes back unless a peer changed it since,
and then as a conflict. A rename is a move only where its source is the version it moved;
elsewhere it puts its file at the new path and leaves the source alone.

`decide` looks at versions and returns steps; the applier (areas.pull.applier) carries
them out on disk and in the database.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from areas.index import Kind, RemoteEvent
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

    `gone`: a tombstone; `blob` is then the version deleted here."""

    blob: bytes
    mode: int = 0o644
    mtime_ns: int = 0
    origin: bytes = b""
    gone: bool = False
    # Where the content last moved from this path went (a rename, a conflict copy).
    moved_to: str = ""
    # The content this version replaced here (an edit's base): older than this version.
    base: bytes | None = None
    # The identity of the last change of the path here (origin peer, number there; 0 unknown).
    change: tuple[bytes, int] = (b"", 0)


class Do(StrEnum):
    SET_STATUS = "set-status"  # the same content: give it the change's mode and mtime
    WRITE = "write"  # put the change's content at the path
    DELETE = "delete"  # remove the file
    MOVE = "move"  # rename old_path to path (first setting a version there aside to `copy`)
    KEEP_MINE = "keep-mine"  # a delete of a version changed here: keep it, note a conflict
    THEIRS_WIN = "theirs-win"  # move this version aside to `copy`, write theirs at the path
    MINE_WIN = "mine-win"  # keep this version, write theirs at `copy`
    REMEMBER = "remember"  # a delete of a path unknown here: keep its tombstone


@dataclass(frozen=True)
class Step:
    do: Do
    path: str
    # WRITE: how the history records the change, and the base it records.
    kind: str | None = None
    base: bytes | None = None
    # The conflict copy's name (THEIRS_WIN, MINE_WIN).
    copy: str = ""
    # A conflict to record, and the version here it kept (None: none was here).
    conflict: str = ""
    kept: bytes | None = None
    # Recorded as this peer's own change, without the remote change's identity.
    own: bool = False


Here = Callable[[str], Version | None]


def decide(change: RemoteEvent, here: Here, local_key: bytes) -> list[Step]:
    """The steps that apply `change`; `here(path)` is this peer's version of a path, a
    tombstone, or None (nothing known there). No step: nothing to do."""
    if _late(change, here):
        return []
    if change.kind == Kind.DELETE:
        return _delete(change, here)
    if change.kind == Kind.RENAME:
        return _rename(change, here, local_key)
    return _put(change, here, local_key, own=False)


def _late(change: RemoteEvent, here: Here) -> bool:
    """Whether a path here already holds a later change of the same peer: this one is
    behind it (it came late, through another peer, after a snapshot had the later one)."""
    for path in (change.path, change.old_path):
        version = here(path) if path else None
        if version is not None and change.origin_seq:
            origin, number = version.change
            if origin == change.origin and number > change.origin_seq:
                return True
    return False


def _live(here: Here, path: str) -> Version | None:
    version = here(path)
    return None if version is None or version.gone else version


def _delete(change: RemoteEvent, here: Here) -> list[Step]:
    mine = _live(here, change.path)
    if mine is None:
        if here(change.path) is None and change.base is not None:
            # So the version deleted there does not come back with a late copy of its create.
            return [Step(Do.REMEMBER, change.path, base=change.base)]
        return []
    if _after(change, mine):
        return [Step(Do.DELETE, change.path, base=mine.blob)]
    if mine.blob != change.base:
        aside = _live(here, mine.moved_to) if mine.moved_to else None
        if aside is not None and aside.blob == change.base:
            # The version deleted there was set aside here (a conflict copy): it goes.
            return [Step(Do.DELETE, mine.moved_to, base=change.base, own=True)]
        if change.snapshot or not change.origin_seq:
            return []  # a snapshot's tombstone of another version: nothing was deleted here
        return [Step(Do.KEEP_MINE, change.path, conflict=CHANGED_HERE, kept=mine.blob)]
    return [Step(Do.DELETE, change.path, base=change.base)]


def _rename(change: RemoteEvent, here: Here, local_key: bytes) -> list[Step]:
    """A move where the source is the version moved; else a put at the new path.

    Either way it keeps the rename's identity: what it did here never comes back to act
    on the peer that made it."""
    was, source = here(change.old_path), _live(here, change.old_path)
    target = _live(here, change.path)
    if source is not None and source.blob == change.blob:
        if target is None or target.blob == change.blob:
            return [Step(Do.MOVE, change.path)]
        # Another version holds the new path: as for any change, the newer keeps it.
        if (change.mtime_ns, change.origin) > (target.mtime_ns, target.origin):
            copy = _free(here, conflict_copy_path(change.path, target.origin or local_key,
                                                  target.mtime_ns), target.blob)  # fmt: skip
            return [Step(Do.MOVE, change.path, copy=copy, conflict=THEIRS_NEWER, kept=target.blob)]
        copy = _free(here, conflict_copy_path(change.path, change.origin, change.mtime_ns),
                     change.blob)  # fmt: skip
        return [Step(Do.MOVE, copy, conflict=MINE_NEWER, kept=target.blob)]
    if target is not None and target.blob == change.blob:
        # The content is at the new path already (a conflict copy the peer moved aside, or
        # a move made here too): a version changed here at the source stays, no conflict.
        return []
    note = ""
    if source is not None:
        note = MOVED_CHANGED_HERE
    elif was is not None:
        note = MOVED_DELETED_HERE
    return _put(change, here, local_key, own=False, note=note)


def _free(here: Here, name: str, blob: bytes) -> str:
    """A conflict copy's name: the first of name, name-1, ... empty or holding `blob`."""
    p, n, found = PurePosixPath(name), 0, name
    while (held := _live(here, found)) is not None and held.blob != blob:
        n += 1
        found = str(p.with_name(f"{p.stem}-{n}{p.suffix}"))
    return found


def _put(
    change: RemoteEvent, here: Here, local_key: bytes, own: bool, note: str = ""
) -> list[Step]:
    path = change.path
    was = here(path)
    mine = _live(here, path)
    current = mine.blob if mine is not None else None
    if change.base == change.blob:
        # Only the permissions or the modification time changed: applies to that very
        # version, nowhere else.
        if current == change.blob and (mine.mode, mine.mtime_ns) != (change.mode, change.mtime_ns):
            return [Step(Do.SET_STATUS, path, own=own)]
        return []
    if current == change.blob:
        return []
    if was is not None and was.base is not None and change.blob == was.base:
        if was.gone or change.base != current:  # (not a revert of the version here)
            return []  # the version this one was made from: it came late, this one stands
    if mine is None:
        if _late_copy(change, was):
            return []  # the version deleted here, arriving late: the delete stands
        if not note and was is not None and (change.base is not None or change.snapshot):
            note = DELETED_HERE  # a version deleted here, changed there since
        return [Step(Do.WRITE, path, kind=Kind.CREATE, conflict=note, own=own)]
    if current == change.base or _after(change, mine):
        kind = change.kind if current == change.base else Kind.OVERWRITE
        return [Step(Do.WRITE, path, kind=kind, base=current, conflict=note, own=own)]
    # Both changed the content: one version keeps the path everywhere.
    if (change.mtime_ns, change.origin) > (mine.mtime_ns, mine.origin):
        copy = conflict_copy_path(path, mine.origin or local_key, mine.mtime_ns)
        return [Step(Do.THEIRS_WIN, path, copy=copy, conflict=THEIRS_NEWER, kept=current, own=own)]
    # Never over another version that has the copy's name (one edited since, say).
    copy = _free(here, conflict_copy_path(path, change.origin, change.mtime_ns), change.blob)
    if _live(here, copy) is not None:
        return []  # that copy is made already
    return [Step(Do.MINE_WIN, path, copy=copy, conflict=MINE_NEWER, kept=current, own=own)]


def _late_copy(change: RemoteEvent, was: Version | None) -> bool:
    """A version deleted here, coming back from another peer: a late copy of it, unless its
    own peer made it after the delete. Content moved away here may be moved back."""
    if was is None or was.blob != change.blob:
        return False
    if change.kind == Kind.RENAME and was.moved_to and was.moved_to == change.old_path:
        return False  # moved back
    return not _after(change, was)


def _after(change: RemoteEvent, version: Version) -> bool:
    """Whether the change is known to follow the last change of this version here: both made
    by the same peer, this one later. Its peer had seen that version then.

    Sequence numbers order the changes of one peer only. So a version deleted here that
    comes back from elsewhere is taken for a late copy of the one deleted."""
    origin, number = version.change
    if number and version.change in change.also:
        return True  # a chain of changes folded into this one started from this version
    return bool(number) and change.origin == origin and change.origin_seq > number


def conflict_copy_path(path: str, origin: bytes, mtime_ns: int) -> str:
    """`name.sync-conflict-YYYYMMDD-HHMMSS-PEERID7.ext`: the version's time and peer."""
    p = PurePosixPath(path)
    when = datetime.datetime.fromtimestamp(mtime_ns / 1e9, tz=datetime.UTC)
    tag = f".sync-conflict-{when:%Y%m%d-%H%M%S}-{peer_id.encode(origin)[:7]}"
    return str(p.with_name(p.stem + tag + p.suffix)) if p.stem else path + tag
