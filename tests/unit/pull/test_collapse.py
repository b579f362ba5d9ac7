"""Chains of changes of one path fold into their last change before they are applied."""

from areas.index import Kind, RemoteEvent
from areas.pull import collapse

PEER, OTHER = b"p" * 32, b"q" * 32
A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def event(seq, kind, path, blob, base, old_path="", version=None):
    version = version if version is not None else ((PEER, seq),)
    return RemoteEvent(seq, kind, path, old_path, blob, base, 1, 0, 0o644, PEER, seq,
                       version=version, old_version=version if old_path else ())  # fmt: skip


def test_create_then_edits_is_a_create_of_the_last_version():
    [e] = collapse(
        [
            event(1, Kind.CREATE, "f", A, None),
            event(2, Kind.EDIT, "f", B, A),
            event(3, Kind.OVERWRITE, "f", C, B),
        ]
    )
    assert (e.kind, e.blob, e.base, e.seq, e.version) == (Kind.CREATE, C, None, 3, ((PEER, 3),))


def test_create_then_delete_is_a_delete():
    """Where the path was never seen it leaves a tombstone; a peer that made the same copy
    (a conflict copy, with the same version) removes it."""
    [e] = collapse([event(1, Kind.CREATE, "f", A, None), event(2, Kind.DELETE, "f", None, A)])
    assert (e.kind, e.base, e.version) == (Kind.DELETE, A, ((PEER, 2),))


def test_edit_then_delete_is_a_delete_of_the_last_version():
    [e] = collapse([event(1, Kind.EDIT, "f", B, A), event(2, Kind.DELETE, "f", None, B)])
    assert (e.kind, e.blob, e.base) == (Kind.DELETE, None, B)


def test_delete_then_create_replaces_the_deleted_version():
    [e] = collapse([event(1, Kind.DELETE, "f", None, A), event(2, Kind.CREATE, "f", B, None)])
    assert (e.kind, e.blob, e.base) == (Kind.OVERWRITE, B, A)


def test_edits_of_one_path_keep_the_first_base():
    [e] = collapse([event(1, Kind.EDIT, "f", B, A), event(2, Kind.EDIT, "f", C, B)])
    assert (e.kind, e.blob, e.base) == (Kind.EDIT, C, A)


def test_changes_made_apart_are_not_folded():
    """A version that does not include the one before it (a conflict the peer decided)
    is decided here against each."""
    given = [
        event(1, Kind.CREATE, "f", A, None),
        event(2, Kind.CREATE, "f", B, None, version=((OTHER, 4),)),
    ]
    assert collapse(given) == given


def test_unrelated_changes_stay_as_they_are():
    given = [event(1, Kind.CREATE, "f", A, None), event(2, Kind.CREATE, "g", B, None)]
    assert collapse(given) == given


def test_a_rename_ends_the_chains_of_both_its_paths():
    given = [
        event(1, Kind.EDIT, "f", B, A),
        event(2, Kind.RENAME, "g", B, None, old_path="f"),
        event(3, Kind.CREATE, "f", A, None),
        event(4, Kind.EDIT, "g", C, B),
    ]
    assert collapse(given) == given
