"""Chunk lists on the wire: plain, or written against a base list the receiver has."""

import os

import pytest

from areas.files import ChunkRef, hash_bytes
from areas.index import BadData, chunk_list_from_wire, chunk_list_to_wire


def test_an_edited_list_travels_as_runs_of_its_base_and_comes_back_whole():
    data = bytearray(os.urandom(8 * 1024 * 1024))
    base = hash_bytes(bytes(data)).chunks
    data[4 * 1024 * 1024 : 4 * 1024 * 1024 + 10] = os.urandom(10)
    edited = hash_bytes(bytes(data))
    wire = chunk_list_to_wire(edited.chunks, base)
    assert len(wire) <= 4  # a run, the new chunk(s), a run
    assert chunk_list_from_wire(wire, edited.size, base) == edited.chunks
    plain = chunk_list_to_wire(edited.chunks)
    assert chunk_list_from_wire(plain, edited.size) == edited.chunks


def test_runs_without_a_base_or_outside_it_are_refused():
    base = [ChunkRef(bytes([i]) * 32, i * 100, 100) for i in range(3)]
    with pytest.raises(BadData):
        chunk_list_from_wire([[0, 3]], 300)  # no base to run over
    with pytest.raises(BadData):
        chunk_list_from_wire([[1, 3]], 300, base)  # past its end
    with pytest.raises(BadData):
        chunk_list_from_wire([[0, 2]], 300, base)  # does not add up to the size
    assert len(chunk_list_from_wire([[0, 3]], 300, base)) == 3
