"""The sync rule (areas.pull.rules), case by case: what a peer's change does here.

Versions are vectors of (peer, number); a change applies when it includes the version here,
does nothing when the version here includes it, and is a conflict otherwise."""

import pytest

from areas.index import Kind, RemoteEvent
from areas.index.versions import copied_to, merge
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
from areas.pull.rules import Deleted, decide, news

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32  # contents
ME, PEER = b"\x01" * 32, b"\x02" * 32  # this peer's key, the other's
T1, T2, T3 = 1_700_000_000_000_000_000, 1_700_000_100_000_000_000, 1_700_000_200_000_000_000


def vv(**numbers):
    """A version vector: vv(me=2, peer=5)."""
    keys = {"me": ME, "peer": PEER}
    return tuple(sorted((keys[k], n) for k, n in numbers.items()))


def change(kind, path="f.txt", blob=None, base=None, old_path="", mtime=T1, mode=0o644,
           version=None, old_version=(), base_version=(), stamp=None, known=(),
           old_stamp=None, moved=False, snapshot=False):  # fmt: skip
    version = version if version is not None else vv(peer=7)
    stamp = stamp if stamp is not None else (mtime, blob or base or b"")
    return RemoteEvent(0, kind, path, old_path, blob, base, 1, mtime, 0o644 if mode is None
                       else mode, PEER, 7, version=version, old_version=old_version,
                       known=known, base_version=base_version, stamp=stamp,
                       old_stamp=old_stamp or (stamp if old_path else (0, b"")),
                       moved=moved, snapshot=snapshot)  # fmt: skip


def here(**paths):
    """This peer's versions, by path (keyword names with '_' for '.')."""
    versions = {name.replace("_", "."): v for name, v in paths.items()}
    return versions.get


def live(blob, version, mtime=T1, mode=0o644, known=None):
    return Version(blob, mode, mtime, ME, version=version, known=known or version,
                   stamp=(mtime, blob))  # fmt: skip


def gone(blob, version, deleted_version=(), mtime=T1):
    """A tombstone: `blob` (made at `mtime`, its version `deleted_version`) deleted here."""
    return Version(blob, mtime_ns=mtime, gone=True, version=version, known=version,
                   deleted_version=deleted_version, stamp=(mtime, blob))  # fmt: skip


def step(do, path="f.txt", version=None, known=None, stamp=None, **rest):
    version = version if version is not None else vv(peer=7)
    return Step(do, path, version, known if known is not None else version,
                stamp if stamp is not None else (T1, A), **rest)  # fmt: skip


def copy_of(copy, version):
    """A conflict copy's name and version: the version copied, at the copy's path."""
    return {"copy": copy, "copy_version": copied_to(version, copy)}


MINE_COPY = conflict_copy_path("f.txt", ME, T1)
THEIRS_COPY = conflict_copy_path("f.txt", PEER, T1)
BOTH = vv(me=1, peer=7)

CASES = [
    # --- a change that includes the version here applies ----------------------------------------
    ("create where nothing is", change(Kind.CREATE, blob=A), here(),
     [step(Do.WRITE, kind=Kind.CREATE)]),
    ("edit of the version here", change(Kind.EDIT, blob=A, base=B, version=vv(me=1, peer=7)),
     here(f_txt=live(B, vv(me=1))),
     [step(Do.WRITE, version=BOTH, kind=Kind.EDIT, base=B)]),
    ("delete of the version here", change(Kind.DELETE, base=B, version=BOTH),
     here(f_txt=live(B, vv(me=1))),
     [step(Do.DELETE, version=BOTH, stamp=(T1, B), base=B,
           deleted=Deleted(B, T1, vv(me=1), (T1, B)))]),
    ("plain rename", change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, version=BOTH,
                            old_version=BOTH, base_version=vv(me=1)),
     here(f_txt=live(A, vv(me=1))),
     [step(Do.MOVE, "g.txt", version=BOTH, source="f.txt",
           source_version=BOTH, source_known=BOTH,
           deleted=Deleted(A, T1, vv(me=1), (T1, A)), moved=True)]),
    ("a rename's source keeps its own stamp; the new path's takes in what it had",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, version=BOTH, old_version=BOTH,
            base_version=vv(me=1), stamp=(T3, C), old_stamp=(T1, A)),
     here(f_txt=live(A, vv(me=1))),
     [step(Do.MOVE, "g.txt", version=BOTH, stamp=(T3, C), source="f.txt", source_version=BOTH,
           source_known=BOTH, deleted=Deleted(A, T1, vv(me=1), (T1, A)), moved=True)]),
    ("a delete of a path never here: its tombstone is kept", change(Kind.DELETE, base=A),
     here(), [step(Do.KEEP, deleted=Deleted(A, T1, (), (T1, A)))]),
    # --- nothing to do: the version here includes the change -------------------------------------
    ("the same change again (through another peer)", change(Kind.EDIT, blob=A, base=B),
     here(f_txt=live(A, vv(peer=7))), []),
    ("an older change, late", change(Kind.CREATE, blob=B, version=vv(peer=3)),
     here(f_txt=live(A, vv(peer=7))), []),
    ("a change decided here before (its version known)", change(Kind.CREATE, blob=B),
     here(f_txt=live(A, vv(me=2), known=vv(me=2, peer=7))), []),
    ("a version deleted here, late: the delete stands", change(Kind.CREATE, blob=A),
     here(f_txt=gone(A, vv(me=9, peer=7))), []),
    ("the same content made again, knowing of the delete (restored by hand): it comes back",
     change(Kind.CREATE, blob=A, version=vv(me=9, peer=12)),
     here(f_txt=gone(A, vv(me=9, peer=7))),
     [step(Do.WRITE, version=vv(me=9, peer=12), kind=Kind.CREATE)]),
    # --- made apart, both with content: the stronger keeps the path ------------------------------
    ("theirs is newer: mine moves aside", change(Kind.EDIT, blob=C, base=A, mtime=T2),
     here(f_txt=live(B, vv(me=1))),
     [step(Do.THEIRS_WIN, version=vv(peer=7), known=BOTH, stamp=(T2, C),
           **copy_of(MINE_COPY, vv(me=1)),
           copy_stamp=(T1, B), conflict=THEIRS_NEWER, kept=B)]),
    ("mine is newer: theirs becomes the copy", change(Kind.EDIT, blob=C, base=A),
     here(f_txt=live(B, vv(me=1), mtime=T2)),
     [step(Do.MINE_WIN, version=vv(me=1), known=BOTH, stamp=(T2, B),
           **copy_of(THEIRS_COPY, vv(peer=7)),
           copy_stamp=(T1, C), conflict=MINE_NEWER, kept=B)]),
    ("a version that descends from stronger content wins, whatever its own time",
     change(Kind.EDIT, blob=C, base=A, stamp=(T3, A)), here(f_txt=live(B, vv(me=1), mtime=T2)),
     [step(Do.THEIRS_WIN, version=vv(peer=7), known=BOTH, stamp=(T3, A),
           **copy_of(conflict_copy_path("f.txt", ME, T2), vv(me=1)),
           copy_stamp=(T2, B), conflict=THEIRS_NEWER, kept=B)]),
    ("a tie on time: the larger content hash wins", change(Kind.EDIT, blob=C, base=A),
     here(f_txt=live(B, vv(me=1))),
     [step(Do.THEIRS_WIN, version=vv(peer=7), known=BOTH, stamp=(T1, C),
           **copy_of(MINE_COPY, vv(me=1)),
           copy_stamp=(T1, B), conflict=THEIRS_NEWER, kept=B)]),
    ("their copy is made here already (and maybe deleted since): not again",
     change(Kind.EDIT, blob=C, base=A),
     here(f_txt=live(B, vv(me=1), mtime=T2), **{THEIRS_COPY.replace(".", "_"):
          gone(C, merge(vv(me=4), copied_to(vv(peer=7), THEIRS_COPY)))}),  # fmt: skip
     [step(Do.KEEP, version=vv(me=1), known=BOTH, stamp=(T2, B))]),
    ("the copy's name holds another version: the next free name",
     change(Kind.EDIT, blob=C, base=A),
     {"f.txt": live(B, vv(me=1), mtime=T2), THEIRS_COPY: live(A, vv(me=3))}.get,
     [step(Do.MINE_WIN, version=vv(me=1), known=BOTH, stamp=(T2, B),
           **copy_of(THEIRS_COPY.replace(".txt", "-1.txt"), vv(peer=7)),
           copy_stamp=(T1, C), conflict=MINE_NEWER, kept=B)]),
    # A copy over a tombstone: only where a peer holding that tombstone takes it too (else
    # that peer sets the copy aside once more, and the peers differ).
    ("the copy's name holds a tombstone of weaker content: the copy goes there",
     change(Kind.EDIT, blob=C, base=A),
     {"f.txt": live(B, vv(me=1), mtime=T2),
      THEIRS_COPY: gone(A, vv(me=3), deleted_version=vv(me=2))}.get,
     [step(Do.MINE_WIN, version=vv(me=1), known=BOTH, stamp=(T2, B),
           **copy_of(THEIRS_COPY, vv(peer=7)),
           copy_stamp=(T1, C), conflict=MINE_NEWER, kept=B)]),
    ("the copy's name holds a tombstone whose content would have beaten it: the next name",
     change(Kind.EDIT, blob=C, base=A),
     {"f.txt": live(B, vv(me=1), mtime=T2),
      THEIRS_COPY: gone(A, vv(me=3), deleted_version=vv(me=2), mtime=T3)}.get,
     [step(Do.MINE_WIN, version=vv(me=1), known=BOTH, stamp=(T2, B),
           **copy_of(THEIRS_COPY.replace(".txt", "-1.txt"), vv(peer=7)),
           copy_stamp=(T1, C), conflict=MINE_NEWER, kept=B)]),
    ("the copy's name holds a tombstone of the copy's content: the next name",
     change(Kind.EDIT, blob=C, base=A),
     {"f.txt": live(B, vv(me=1), mtime=T2),
      THEIRS_COPY: gone(C, vv(me=3), deleted_version=vv(me=2))}.get,
     [step(Do.MINE_WIN, version=vv(me=1), known=BOTH, stamp=(T2, B),
           **copy_of(THEIRS_COPY.replace(".txt", "-1.txt"), vv(peer=7)),
           copy_stamp=(T1, C), conflict=MINE_NEWER, kept=B)]),
    ("the same content made apart: one version, no conflict", change(Kind.CREATE, blob=A),
     here(f_txt=live(A, vv(me=1))), [step(Do.KEEP, version=BOTH)]),
    # --- delete against change: the change wins -------------------------------------------------
    ("deleted there, changed here", change(Kind.DELETE, base=A, base_version=vv(me=1)),
     here(f_txt=live(B, vv(me=2))),
     [step(Do.KEEP, version=vv(me=2), known=vv(me=2, peer=7), stamp=(T1, B),
           conflict=CHANGED_HERE, kept=B)]),
    ("a snapshot's tombstone made apart: kept, nothing noted",
     change(Kind.DELETE, base=A, base_version=vv(me=1), snapshot=True),
     here(f_txt=live(B, vv(me=2))),
     [step(Do.KEEP, version=vv(me=2), known=vv(me=2, peer=7), stamp=(T1, B))]),
    ("changed there, deleted here", change(Kind.EDIT, blob=B, base=A, mtime=T2,
                                           version=vv(me=1, peer=7)),
     here(f_txt=gone(A, vv(me=2), vv(me=1))),
     [step(Do.WRITE, version=vv(me=1, peer=7), known=vv(me=2, peer=7), stamp=(T2, B),
           kind=Kind.CREATE, conflict=DELETED_HERE)]),
    ("made apart from a stronger version deleted here: it goes to a copy, the delete stands",
     change(Kind.CREATE, blob=B), here(f_txt=gone(A, vv(me=2), vv(me=1), mtime=T2)),
     [step(Do.MINE_WIN, version=vv(me=2), known=vv(me=2, peer=7), stamp=(T2, A),
           **copy_of(THEIRS_COPY, vv(peer=7)), copy_stamp=(T1, B),
           conflict=DELETED_HERE, deleted=Deleted(A, T2, vv(me=1), (T2, A)))]),
    ("deleted there, and the content deleted there was stronger: this version goes to a copy",
     change(Kind.DELETE, base=A, mtime=T2, base_version=vv(peer=3), stamp=(T2, A)),
     here(f_txt=live(B, vv(me=1))),
     [step(Do.DELETE, version=vv(peer=7), known=BOTH, stamp=(T2, A), base=B,
           deleted=Deleted(A, T2, vv(peer=3), (T2, A)),
           **copy_of(MINE_COPY, vv(me=1)),
           copy_stamp=(T1, B), conflict=CHANGED_HERE, kept=B)]),
    ("deleted there, the content deleted there weighed here before: this version stays",
     change(Kind.DELETE, base=A, mtime=T2, base_version=vv(peer=3), stamp=(T2, A)),
     here(f_txt=live(B, vv(me=1), known=vv(me=1, peer=3))),
     [step(Do.KEEP, version=vv(me=1), known=BOTH, stamp=(T1, B), conflict=CHANGED_HERE,
           kept=B)]),
    ("deleted on both sides", change(Kind.DELETE, base=A, mtime=T2, stamp=(T2, A)),
     here(f_txt=gone(B, vv(me=1))),
     [step(Do.KEEP, version=BOTH, stamp=(T2, A), deleted=Deleted(A, T2, (), (T2, A)))]),
    # --- the same content made apart, neither by a move (a peer joined with an old copy) -------
    ("a delete of the very content here, made apart: it goes",
     change(Kind.DELETE, base=A, base_version=vv(peer=3)), here(f_txt=live(A, vv(me=1))),
     [step(Do.DELETE, known=BOTH, stamp=(T1, A), base=A,
           deleted=Deleted(A, T1, vv(peer=3), (T1, A)))]),
    ("the very content deleted here, made apart: the delete stands",
     change(Kind.CREATE, blob=A), here(f_txt=gone(A, vv(me=2), vv(me=1))),
     [step(Do.KEEP, version=vv(me=2), known=vv(me=2, peer=7), stamp=(T1, A),
           deleted=Deleted(A, T1, vv(me=1), (T1, A)))]),
    ("the same content moved in here: another file, the delete leaves it",
     change(Kind.DELETE, base=A, base_version=vv(peer=3)),
     here(f_txt=Version(A, 0o644, T1, ME, version=vv(me=1), known=vv(me=1), stamp=(T1, A),
                        moved=True)),
     [step(Do.KEEP, version=vv(me=1), known=BOTH, stamp=(T1, A), conflict=CHANGED_HERE,
           kept=A, moved=True)]),
    ("the same content moved in there: another file, it comes",
     change(Kind.CREATE, blob=A, moved=True), here(f_txt=gone(A, vv(me=2), vv(me=1))),
     [step(Do.WRITE, version=vv(peer=7), known=vv(me=2, peer=7), kind=Kind.CREATE,
           conflict=DELETED_HERE, moved=True)]),
    ("the same content, made from the version deleted there: a change, kept",
     change(Kind.DELETE, base=A, base_version=vv(me=1)), here(f_txt=live(A, vv(me=2))),
     [step(Do.KEEP, version=vv(me=2), known=vv(me=2, peer=7), stamp=(T1, A),
           conflict=CHANGED_HERE, kept=A)]),
    ("two versions joined here, a delete made knowing one: the other stays",
     change(Kind.DELETE, base=A, version=vv(peer=3), base_version=vv(peer=2)),
     here(f_txt=Version(A, 0o644, T1, ME, version=vv(me=2, peer=2), known=vv(me=2, peer=2),
                        stamp=(T1, A), moved=True)),
     [step(Do.KEEP, version=vv(me=2), known=vv(me=2, peer=3), stamp=(T1, A),
           conflict=CHANGED_HERE, kept=A, moved=True)]),
    # --- conflict copies ------------------------------------------------------------------------
    ("a copy's version is the copied one moved to the copy's path: numbers there are others'",
     change(Kind.EDIT, blob=C, base=A, mtime=T2),
     here(f_txt=live(B, vv(me=1, peer=5)), **{MINE_COPY.replace(".", "_"):
          gone(A, vv(me=2, peer=5))}),  # fmt: skip
     [step(Do.THEIRS_WIN, version=vv(peer=7), known=vv(me=1, peer=7), stamp=(T2, C),
           **copy_of(MINE_COPY, vv(me=1, peer=5)),
           copy_stamp=(T1, B), conflict=THEIRS_NEWER, kept=B)]),
    # --- permissions or time only ---------------------------------------------------------------
    ("new mode for the version here", change(Kind.EDIT, blob=A, base=A, mode=0o755,
                                             version=BOTH),
     here(f_txt=live(A, vv(me=1))), [step(Do.SET_STATUS, version=BOTH)]),
    ("new time for the version here", change(Kind.EDIT, blob=A, base=A, mtime=T2,
                                             version=BOTH),
     here(f_txt=live(A, vv(me=1))), [step(Do.SET_STATUS, version=BOTH, stamp=(T2, A))]),
    # --- renames that are not plain moves here --------------------------------------------------
    ("rename of a file changed here: the change stays, the new name gets theirs",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, old_version=vv(peer=7),
            base_version=vv(me=1)),
     here(f_txt=live(B, vv(me=2))),
     [step(Do.KEEP, version=vv(me=2), known=vv(me=2, peer=7), stamp=(T1, B)),
      step(Do.WRITE, "g.txt", kind=Kind.CREATE, conflict=MOVED_CHANGED_HERE, moved=True)]),
    ("rename of a file deleted here: the moved file is kept, as a conflict",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, old_version=vv(peer=7),
            base_version=vv(me=1)),
     here(f_txt=gone(A, vv(me=2), vv(me=1))),
     [step(Do.KEEP, version=vv(me=2, peer=7), known=vv(me=2, peer=7), stamp=(T1, A),
           deleted=Deleted(A, T1, vv(me=1), (T1, A))),
      step(Do.WRITE, "g.txt", kind=Kind.CREATE, conflict=MOVED_DELETED_HERE, moved=True)]),
    ("rename of a file never here: its source remembered, put at the new path",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, old_version=vv(peer=7)),
     here(), [step(Do.KEEP, deleted=Deleted(A, T1, (), (T1, A)), moved=True),
              step(Do.WRITE, "g.txt", kind=Kind.CREATE, moved=True)]),
    ("rename onto a stronger version: the moved file becomes the copy",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, version=vv(peer=7),
            old_version=BOTH),
     here(f_txt=live(A, vv(me=1)), g_txt=live(B, vv(me=2), mtime=T2)),
     [step(Do.MOVE, conflict_copy_path("g.txt", PEER, T1),
           version=copied_to(vv(peer=7), conflict_copy_path("g.txt", PEER, T1)), known=(),
           conflict=MINE_NEWER, kept=B, source="f.txt", source_version=BOTH,
           source_known=BOTH, deleted=Deleted(A, T1, vv(me=1), (T1, A)), own=True),
      step(Do.KEEP, "g.txt", version=vv(me=2), known=vv(me=2, peer=7), stamp=(T2, B))]),
    ("rename onto a weaker version: that one moves aside",
     change(Kind.RENAME, path="g.txt", old_path="f.txt", blob=A, mtime=T2, version=vv(peer=7),
            old_version=BOTH, stamp=(T2, A)),
     here(f_txt=live(A, vv(me=1), mtime=T2), g_txt=live(B, vv(me=2))),
     [step(Do.MOVE, "g.txt", version=vv(peer=7), known=vv(me=2, peer=7), stamp=(T2, A),
           **copy_of(conflict_copy_path("g.txt", ME, T1), vv(me=2)),
           copy_stamp=(T1, B), conflict=THEIRS_NEWER, kept=B, source="f.txt",
           source_version=BOTH, source_known=BOTH,
           deleted=Deleted(A, T2, vv(me=1), (T2, A)), moved=True)]),
]


@pytest.mark.parametrize(("name", "remote", "local", "steps"), CASES, ids=[c[0] for c in CASES])
def test_decide(name, remote, local, steps):
    assert decide(remote, local, ME) == steps


@pytest.mark.parametrize(
    ("name", "remote", "local", "expected"),
    [
        ("nothing here", change(Kind.CREATE, blob=A), here(), True),
        ("included", change(Kind.CREATE, blob=A), here(f_txt=live(A, vv(peer=9))), False),
        ("made apart", change(Kind.CREATE, blob=A), here(f_txt=live(B, vv(me=1))), True),
        ("a rename whose source is news", change(Kind.RENAME, "g.txt", A, old_path="f.txt",
         old_version=vv(peer=7)), here(g_txt=live(A, vv(peer=7))), True),  # fmt: skip
    ],
)
def test_news(name, remote, local, expected):
    """What a page's changes are filtered by before any content is fetched."""
    assert news(remote, local) is expected


def test_conflict_copy_names_carry_the_time_and_the_peer():
    name = conflict_copy_path("dir/report.txt", PEER, T1)
    assert name.startswith("dir/report.sync-conflict-20231114-221320-")
    assert name.endswith(".txt")
    assert conflict_copy_path(".bashrc", PEER, T1).startswith(".bashrc.sync-conflict-")
