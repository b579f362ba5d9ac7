"""What a peer's change does here: the sync rule, as a pure function.

A change applies when its base is this peer's current version of the path. Otherwise:
- both sides changed the content: the version with the later mtime (then the larger origin
  key) keeps the path on every peer; the other is kept beside it as a conflict copy named
  after its peer and time, so every peer ends with the same two files;
- one side deleted, the other changed: the change wins (nothing is lost);
- both sides reached the same content: nothing to do.

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


@dataclass(frozen=True)
class Version:
    """This peer's version of a path, as the index knows it."""

    blob: bytes
    mode: int = 0o644
    mtime_ns: int = 0
    origin: bytes = b""


class Do(StrEnum):
    SET_STATUS = "set-status"  # the same content: give it the change's mode and mtime
    WRITE = "write"  # put the change's content at the path
    DELETE = "delete"  # remove the file
    MOVE = "move"  # rename old_path to path, content unchanged
    KEEP_MINE = "keep-mine"  # a delete of a version changed here: keep it, note a conflict
    THEIRS_WIN = "theirs-win"  # move this version aside to `copy`, write theirs at the path
    MINE_WIN = "mine-win"  # keep this version, write theirs at `copy`


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
    """The steps that apply `change`; `here(path)` is this peer's version of a path (None:
    no file there). No step: nothing to do."""
    if change.kind == Kind.DELETE:
        return _delete(change, change.path, change.base, here, own=False)
    if change.kind == Kind.RENAME:
        source, target = here(change.old_path), here(change.path)
        if source is not None and source.blob == change.blob and target is None:
            return [Step(Do.MOVE, change.path)]
        # Not a plain move here: a delete and a create, each a change of this peer's own.
        return [
            *_delete(change, change.old_path, change.blob, here, own=True),
            *_put(change, here, local_key, own=True),
        ]
    return _put(change, here, local_key, own=False)


def _delete(
    change: RemoteEvent, path: str, base: bytes | None, here: Here, own: bool
) -> list[Step]:
    mine = here(path)
    if mine is None:
        return []
    if mine.blob != base:
        if not change.origin_seq:
            return []  # a snapshot's tombstone of another version: nothing was deleted here
        return [Step(Do.KEEP_MINE, path, conflict=CHANGED_HERE, kept=mine.blob)]
    return [Step(Do.DELETE, path, base=base, own=own)]


def _put(change: RemoteEvent, here: Here, local_key: bytes, own: bool) -> list[Step]:
    path = change.path
    mine = here(path)
    current = mine.blob if mine is not None else None
    if change.base == change.blob:
        # Only the permissions or the modification time changed: applies to that very
        # version, nowhere else.
        if current == change.blob and (mine.mode, mine.mtime_ns) != (change.mode, change.mtime_ns):
            return [Step(Do.SET_STATUS, path, own=own)]
        return []
    if current == change.blob:
        return []
    if current is None or current == change.base:
        # A rename that is not a move here puts its file as a create: a rename recorded
        # without the path it left would be refused by every peer.
        same_base = current == change.base and change.kind != Kind.RENAME
        kind = change.kind if same_base else Kind.CREATE
        note = DELETED_HERE if current is None and change.base is not None else ""
        return [Step(Do.WRITE, path, kind=kind, base=current, conflict=note, own=own)]
    # Both changed the content: one version keeps the path everywhere.
    if (change.mtime_ns, change.origin) > (mine.mtime_ns, mine.origin):
        copy = conflict_copy_path(path, mine.origin or local_key, mine.mtime_ns)
        return [Step(Do.THEIRS_WIN, path, copy=copy, conflict=THEIRS_NEWER, kept=current, own=own)]
    copy = conflict_copy_path(path, change.origin, change.mtime_ns)
    held = here(copy)
    if held is not None and held.blob == change.blob:
        return []  # that copy is made already
    return [Step(Do.MINE_WIN, path, copy=copy, conflict=MINE_NEWER, kept=current, own=own)]


def conflict_copy_path(path: str, origin: bytes, mtime_ns: int) -> str:
    """`name.sync-conflict-YYYYMMDD-HHMMSS-PEERID7.ext`: the version's time and peer."""
    p = PurePosixPath(path)
    when = datetime.datetime.fromtimestamp(mtime_ns / 1e9, tz=datetime.UTC)
    tag = f".sync-conflict-{when:%Y%m%d-%H%M%S}-{peer_id.encode(origin)[:7]}"
    return str(p.with_name(p.stem + tag + p.suffix)) if p.stem else path + tag
