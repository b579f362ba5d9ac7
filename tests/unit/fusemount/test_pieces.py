"""A read of an Unreal file put together from the chunks that hold it (fusemount.unreal)."""

import os

import pytest

from fusemount.unreal import _piece_together

CONTENT = os.urandom(1000)
# Chunks of uneven lengths, as content-defined chunking makes them.
BOUNDS = [(0, 100), (100, 250), (350, 50), (400, 600)]
PARTS = {bytes([i]): CONTENT[o : o + n] for i, (o, n) in enumerate(BOUNDS)}
LISTING = [(bytes([i]), o, n) for i, (o, n) in enumerate(BOUNDS)]


@pytest.mark.parametrize(
    "offset, end",
    [
        (0, 100),  # one chunk, whole
        (10, 20),  # inside one chunk
        (0, 1000),  # every chunk
        (99, 101),  # across one bound
        (150, 420),  # from inside one chunk to inside another, one whole between
        (350, 400),  # one small chunk, whole
        (999, 1000),  # the last byte
    ],
)
def test_a_read_is_its_range_of_the_content(offset, end):
    needed = [c for c in LISTING if c[1] < end and c[1] + c[2] > offset]
    into = bytearray(b"x" * 2000)  # longer than any read, and not zeroed
    assert bytes(_piece_together(needed, PARTS, offset, end, into)) == CONTENT[offset:end]
