"""Chains of changes of one path fold into one change before they are applied."""

from areas.index import Kind, RemoteEvent
from areas.pull import collapse

PEER = b"p" * 32
A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def event(seq, kind, path, blob, base, old_path=""):
    return RemoteEvent(seq, kind, path, old_path, blob, base, 1, 0, 0o644, PEER, seq)


def test_create_then_edits_is_a_create_of_the_last_version():
    events, gone = collapse(
        [
            event(1, Kind.CREATE, "f", A, None),
            event(2, Kind.EDIT, "f", B, A),
            event(3, Kind.OVERWRITE, "f", C, B),
        ]
    )
    assert gone == []
    [e] = events
    assert (e.kind, e.blob, e.base, e.seq) == (Kind.CREATE, C, None, 1)
    assert set(e.also) == {(PEER, 1), (PEER, 2)} and e.origin_seq == 3


def test_create_then_delete_is_the_state_gone():
    """Not nothing: a peer that made the same copy (a conflict copy) removes it too."""
    [e], gone = collapse(
        [event(1, Kind.CREATE, "f", A, None), event(2, Kind.DELETE, "f", None, A)]
    )
    assert (e.kind, e.base, e.snapshot) == (Kind.DELETE, A, True)
    assert {(e.origin, e.origin_seq), *e.also} == {(PEER, 1), (PEER, 2)} and gone == []


def test_edit_then_delete_is_a_delete_of_the_first_version():
    [e], _ = collapse([event(1, Kind.EDIT, "f", B, A), event(2, Kind.DELETE, "f", None, B)])
    assert (e.kind, e.blob, e.base) == (Kind.DELETE, None, A)


def test_delete_then_create_replaces_the_deleted_version():
    [e], _ = collapse([event(1, Kind.DELETE, "f", None, A), event(2, Kind.CREATE, "f", B, None)])
    assert (e.kind, e.blob, e.base) == (Kind.OVERWRITE, B, A)


def test_unrelated_changes_and_broken_chains_stay_as_they_are():
    given = [
        event(1, Kind.CREATE, "f", A, None),
        event(2, Kind.CREATE, "g", B, None),
        event(3, Kind.EDIT, "f", C, B),  # its base is not what the create made
    ]
    events, gone = collapse(given)
    assert events == given and gone == []


def test_made_then_moved_is_made_at_the_new_path():
    [e], _ = collapse(
        [event(1, Kind.CREATE, "f", A, None), event(2, Kind.RENAME, "g", A, None, old_path="f")]
    )
    assert (e.kind, e.path, e.old_path, e.blob, e.base) == (Kind.CREATE, "g", "", A, None)
    assert e.origin_seq == 2 and e.also == ((PEER, 1),)


def test_moved_there_and_back_is_nothing_but_both_are_seen():
    events, gone = collapse(
        [
            event(1, Kind.RENAME, "g", A, None, old_path="f"),
            event(2, Kind.RENAME, "f", A, None, old_path="g"),
        ]
    )
    assert events == [] and set(gone) == {(PEER, 1), (PEER, 2)}


def test_moved_then_changed_is_a_delete_there_and_the_change_here():
    """The change is decided where its base is, not against a copy the move made."""
    events, _ = collapse(
        [event(1, Kind.RENAME, "g", A, None, old_path="f"), event(2, Kind.EDIT, "g", B, A)]
    )
    assert [(e.kind, e.path, e.blob, e.base) for e in events] == [
        (Kind.DELETE, "f", None, A),
        (Kind.EDIT, "g", B, A),
    ]


def test_a_rename_ends_the_chain_of_its_source():
    given = [
        event(1, Kind.EDIT, "f", B, A),
        event(2, Kind.RENAME, "g", B, None, old_path="f"),
        event(3, Kind.CREATE, "f", A, None),
        event(4, Kind.RENAME, "h", B, None, old_path="g"),
    ]
    events, _ = collapse(given)
    assert events == given
