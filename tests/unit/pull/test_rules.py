"""The sync rule (areas.pull.rules), case by case: what a peer's change does here."""

import pytest

from areas.index import Kind, RemoteEvent
from areas.pull import (
    CHANGED_HERE,
    DELETED_HERE,
    MINE_NEWER,
    MOVED_CHANGED_HERE,
    MOVED_DELETED_HERE,
    THEIRS_NEWER,
    Do,
    Step,
    Version,
    conflict_copy_path,
)
from areas.pull.rules import decide

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32  # contents
ME, PEER = b"\x01" * 32, b"\x02" * 32  # this peer's key, the other's (larger)
T1, T2 = 1_700_000_000_000_000_000, 1_700_000_100_000_000_000  # two mtimes, T2 later


def change(kind, path="f.txt", blob=None, base=None, old_path="", mtime=T1, mode=0o644,
           origin=PEER, origin_seq=7, snapshot=False):  # fmt: skip
    return RemoteEvent(0, kind, path, old_path, blob, base, 1, mtime, mode, origin, origin_seq,
                       snapshot=snapshot)  # fmt: skip


def here(**paths):
    """This peer's versions, by path (keyword names with '_' for '.')."""
    versions = {name.replace("_", "."): v for name, v in paths.items()}
    return versions.get


def v(blob, mtime=T1, mode=0o644, origin=ME):
    return Version(blob, mode, mtime, origin)


def gone(blob):
    """A tombstone: `blob` was deleted here."""
    return Version(blob, gone=True)


MINE_COPY = conflict_copy_path("f.txt", ME, T1)
THEIRS_COPY_T1 = conflict_copy_path("f.txt", PEER, T1)
COPY_G = conflict_copy_path("g.txt", PEER, T1)

CASES = [
    # --- a change whose base is what is here applies ----------------------------------------
    ("create where nothing is", change(Kind.CREATE, blob=A), here(),
     [Step(Do.WRITE, "f.txt", kind=Kind.CREATE)]),
    ("edit of the version here", change(Kind.EDIT, blob=B, base=A), here(f_txt=v(A)),
     [Step(Do.WRITE, "f.txt", kind=Kind.EDIT, base=A)]),
    ("delete of the version here", change(Kind.DELETE, base=A), here(f_txt=v(A)),
     [Step(Do.DELETE, "f.txt", base=A)]),
    ("plain rename", change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A),
     here(f_txt=v(A)), [Step(Do.MOVE, "g.txt")]),
    # --- nothing to do ------------------------------------------------------------------------
    ("the same content already (seen through another peer)",
     change(Kind.EDIT, blob=B, base=A), here(f_txt=v(B)), []),
    ("a delete of a path never here: its tombstone is kept", change(Kind.DELETE, base=A),
     here(), [Step(Do.REMEMBER, "f.txt", base=A)]),
    # --- the changes of one peer are ordered by their numbers --------------------------------
    ("a later change of the peer whose version is here replaces it",
     change(Kind.EDIT, blob=C, base=B, origin_seq=9),
     here(f_txt=Version(A, 0o644, T1, PEER, change=(PEER, 5))),
     [Step(Do.WRITE, "f.txt", kind=Kind.OVERWRITE, base=A)]),
    ("a change older than the last one here of its peer came late: nothing",
     change(Kind.CREATE, blob=A, origin_seq=3),
     here(f_txt=Version(B, 0o644, T1, PEER, change=(PEER, 5))), []),
    ("the same peer deleted its version here later", change(Kind.DELETE, base=B, origin_seq=9),
     here(f_txt=Version(A, 0o644, T1, PEER, change=(PEER, 5))),
     [Step(Do.DELETE, "f.txt", base=A)]),
    # --- both changed the content: the later mtime keeps the path ------------------------------
    ("theirs is newer: mine moves aside", change(Kind.EDIT, blob=C, base=A, mtime=T2),
     here(f_txt=v(B, T1)),
     [Step(Do.THEIRS_WIN, "f.txt", copy=MINE_COPY, conflict=THEIRS_NEWER, kept=B)]),
    ("mine is newer: theirs becomes the copy", change(Kind.EDIT, blob=C, base=A, mtime=T1),
     here(f_txt=v(B, T2)),
     [Step(Do.MINE_WIN, "f.txt", copy=THEIRS_COPY_T1, conflict=MINE_NEWER, kept=B)]),
    ("a tie on mtime: the larger origin key wins", change(Kind.EDIT, blob=C, base=A),
     here(f_txt=v(B, T1, origin=ME)),
     [Step(Do.THEIRS_WIN, "f.txt", copy=MINE_COPY, conflict=THEIRS_NEWER, kept=B)]),
    ("a tie on mtime, the smaller key theirs: mine keeps the path",
     change(Kind.EDIT, blob=C, base=A, origin=ME),
     here(f_txt=v(B, T1, origin=PEER)),
     [Step(Do.MINE_WIN, "f.txt", copy=conflict_copy_path("f.txt", ME, T1),
           conflict=MINE_NEWER, kept=B)]),
    ("the copy is made already", change(Kind.EDIT, blob=C, base=A, mtime=T1),
     here(f_txt=v(B, T2), **{THEIRS_COPY_T1.replace(".", "_"): v(C)}), []),
    ("the copy's name holds another version (edited since): the next free name",
     change(Kind.EDIT, blob=C, base=A, mtime=T1),
     {"f.txt": v(B, T2), THEIRS_COPY_T1: v(A)}.get,
     [Step(Do.MINE_WIN, "f.txt", copy=THEIRS_COPY_T1.replace(".txt", "-1.txt"),
           conflict=MINE_NEWER, kept=B)]),
    ("a version of no peer of ours (no origin) moves aside under this peer's key",
     change(Kind.EDIT, blob=C, base=A, mtime=T2), here(f_txt=v(B, T1, origin=b"")),
     [Step(Do.THEIRS_WIN, "f.txt", copy=MINE_COPY, conflict=THEIRS_NEWER, kept=B)]),
    # --- edit against delete: the edit wins --------------------------------------------------
    ("an edit of a path never here: a create", change(Kind.EDIT, blob=B, base=A), here(),
     [Step(Do.WRITE, "f.txt", kind=Kind.CREATE)]),
    ("deleted there, edited here", change(Kind.DELETE, base=A), here(f_txt=v(B)),
     [Step(Do.KEEP_MINE, "f.txt", conflict=CHANGED_HERE, kept=B)]),
    ("a snapshot's tombstone of an older version: nothing deleted",
     change(Kind.DELETE, base=A, origin_seq=0), here(f_txt=v(B)), []),
    ("a snapshot's tombstone of another version, its identity known: nothing deleted",
     change(Kind.DELETE, base=A, snapshot=True), here(f_txt=v(B)), []),
    ("a delete of what is deleted here too", change(Kind.DELETE, base=A), here(f_txt=gone(A)),
     []),
    ("edited there, the version deleted here", change(Kind.EDIT, blob=B, base=A),
     here(f_txt=gone(A)), [Step(Do.WRITE, "f.txt", kind=Kind.CREATE, conflict=DELETED_HERE)]),
    # --- a snapshot never brings back a version deleted here ----------------------------------
    ("a snapshot's version of unknown identity, the one deleted here",
     change(Kind.CREATE, blob=A, origin_seq=0, snapshot=True), here(f_txt=gone(A)), []),
    ("a snapshot's version changed since the delete here: kept, as a conflict",
     change(Kind.CREATE, blob=B, snapshot=True), here(f_txt=gone(A)),
     [Step(Do.WRITE, "f.txt", kind=Kind.CREATE, conflict=DELETED_HERE)]),
    ("the version deleted here, from elsewhere: a late copy, the delete stands",
     change(Kind.CREATE, blob=A), here(f_txt=gone(A)), []),
    ("the file made again by the peer that deleted it, later",
     change(Kind.CREATE, blob=A, origin_seq=7),
     here(f_txt=Version(A, gone=True, change=(PEER, 5))),
     [Step(Do.WRITE, "f.txt", kind=Kind.CREATE)]),
    # --- a peer joining: a snapshot's creates carry no base ----------------------------------
    ("a joining peer's file, the same here", change(Kind.CREATE, blob=A, origin_seq=0),
     here(f_txt=v(A)), []),
    ("a joining peer's file, other content here and newer there",
     change(Kind.CREATE, blob=A, mtime=T2, origin_seq=0), here(f_txt=v(B, T1)),
     [Step(Do.THEIRS_WIN, "f.txt", copy=MINE_COPY, conflict=THEIRS_NEWER, kept=B)]),
    # --- renames that are not plain moves here ------------------------------------------------
    ("rename of a file edited here: the edit stays, the name gets theirs",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A), here(f_txt=v(B)),
     [Step(Do.WRITE, "g.txt", kind=Kind.CREATE, conflict=MOVED_CHANGED_HERE)]),
    ("rename of a file deleted here: the moved file is kept, as a conflict",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A), here(f_txt=gone(A)),
     [Step(Do.WRITE, "g.txt", kind=Kind.CREATE, conflict=MOVED_DELETED_HERE)]),
    ("a version moved aside there, its copy made here already: no conflict",
     change(Kind.RENAME, path=THEIRS_COPY_T1, old_path="f.txt", blob=C),
     here(f_txt=v(B), **{THEIRS_COPY_T1.replace(".", "_"): v(C)}), []),
    ("rename onto a newer version of another content: the moved file becomes the copy",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, mtime=T1),
     here(f_txt=v(A), g_txt=v(B, T2)),
     [Step(Do.MOVE, conflict_copy_path("g.txt", PEER, T1), conflict=MINE_NEWER, kept=B)]),
    ("rename onto an older version of another content: that one moves aside",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, mtime=T2),
     here(f_txt=v(A), g_txt=v(B, T1)),
     [Step(Do.MOVE, "g.txt", copy=conflict_copy_path("g.txt", ME, T1), conflict=THEIRS_NEWER,
           kept=B)]),
    ("rename onto a path that holds the same content", change(Kind.RENAME, path="g.txt",
     old_path="f.txt", blob=A), here(f_txt=v(A), g_txt=v(A)), [Step(Do.MOVE, "g.txt")]),
    ("rename of a file never here: put at the new path",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A),
     here(), [Step(Do.WRITE, "g.txt", kind=Kind.CREATE)]),
    ("rename, its copy's name taken by another version: the next free name",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, mtime=T1),
     {"f.txt": v(A), "g.txt": v(B, T2), COPY_G: v(C)}.get,
     [Step(Do.MOVE, COPY_G.replace(".txt", "-1.txt"), conflict=MINE_NEWER, kept=B)]),
    ("a rename already seen in a later change of its peer here: nothing",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, origin_seq=3),
     here(f_txt=Version(A, 0o644, T1, PEER, change=(PEER, 5))), []),
    ("the content moved away here comes back by a rename",
     change(Kind.RENAME, path="f.txt", old_path="g.txt", blob=A),
     here(f_txt=Version(A, gone=True, moved_to="g.txt"), g_txt=v(B)),
     [Step(Do.WRITE, "f.txt", kind=Kind.CREATE, conflict=MOVED_CHANGED_HERE)]),
    ("the version this one was made from, coming late: nothing",
     change(Kind.CREATE, blob=A), here(f_txt=Version(B, 0o644, T1, PEER, base=A)), []),
    ("a revert of this version to the one it was made from applies",
     change(Kind.EDIT, blob=A, base=B), here(f_txt=Version(B, 0o644, T1, PEER, base=A)),
     [Step(Do.WRITE, "f.txt", kind=Kind.EDIT, base=B)]),
    ("a deleted version's ancestor, coming late: nothing",
     change(Kind.CREATE, blob=A), here(f_txt=Version(B, gone=True, base=A)), []),
    # --- permissions or mtime only -------------------------------------------------------------
    ("new mode for the same version", change(Kind.EDIT, blob=A, base=A, mode=0o755),
     here(f_txt=v(A)), [Step(Do.SET_STATUS, "f.txt")]),
    ("new mtime for the same version", change(Kind.EDIT, blob=A, base=A, mtime=T2),
     here(f_txt=v(A, T1)), [Step(Do.SET_STATUS, "f.txt")]),
    ("mode and mtime as here already", change(Kind.EDIT, blob=A, base=A), here(f_txt=v(A)), []),
    ("a status change of a version changed here since", change(Kind.EDIT, blob=A, base=A,
     mode=0o755), here(f_txt=v(B)), []),
    ("a status change of a file gone here", change(Kind.EDIT, blob=A, base=A, mode=0o755),
     here(), []),
]


@pytest.mark.parametrize(("name", "remote", "local", "steps"), CASES, ids=[c[0] for c in CASES])
def test_decide(name, remote, local, steps):
    assert decide(remote, local, ME) == steps


def test_conflict_copy_names_carry_the_time_and_the_peer():
    name = conflict_copy_path("dir/report.txt", PEER, T1)
    assert name.startswith("dir/report.sync-conflict-20231114-221320-")
    assert name.endswith(".txt")
    assert conflict_copy_path(".bashrc", PEER, T1).startswith(".bashrc.sync-conflict-")
