"""Version vectors (areas.index.versions): inclusion, joins, and copies at another path."""

import pytest

from areas.index.versions import beyond, bump, copied_to, includes, merge, pack, unpack

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32


def v(**numbers):
    keys = {"a": A, "b": B, "c": C}
    return tuple(sorted((keys[k], n) for k, n in numbers.items()))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (v(), v(), True),
        (v(a=2), v(a=1), True),
        (v(a=1), v(a=2), False),
        (v(a=1, b=3), v(b=3), True),
        (v(a=1), v(b=1), False),  # made apart
    ],
)
def test_includes(a, b, expected):
    assert includes(a, b) is expected


def test_merge_and_bump_keep_the_highest_number_per_peer():
    assert merge(v(a=1, b=5), v(a=3, c=2)) == v(a=3, b=5, c=2)
    assert bump(v(a=1, b=5), A, 9) == v(a=9, b=5)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (v(a=2, b=2), v(b=3), v(a=2)),  # joined, one part deleted: the other is left
        (v(a=2, b=2), v(a=1), v(a=2, b=2)),
        (v(a=2), v(a=2), v()),
    ],
)
def test_beyond(a, b, expected):
    assert beyond(a, b) == expected


def test_a_copy_at_another_path_is_not_included_by_that_paths_numbers():
    copied = copied_to(v(a=1, b=5), "f.sync-conflict.txt")
    assert copied == copied_to(v(a=1, b=5), "f.sync-conflict.txt")  # every peer agrees
    assert not includes(v(a=2, b=5), copied)
    assert includes(copied_to(v(a=2, b=5), "f.sync-conflict.txt"), copied)  # order is kept
    assert copied != copied_to(v(a=1, b=5), "g.sync-conflict.txt")


def test_pack_round_trips():
    assert unpack(pack(v(a=1, b=2**40))) == v(a=1, b=2**40)
