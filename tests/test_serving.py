"""Chunks served from the Real: a file still as indexed is read as it is; the chunks of a
file changed since are checked, and the changed ones are not sent."""

import os

from areas import content
from areas.chunking import chunk_hash


def _where(path, parts):
    st = os.stat(path)
    indexed = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return {chunk_hash(data): (str(path), offset, len(data), indexed) for offset, data in parts}


def test_a_file_as_indexed_is_served_without_hashing_it_again(tmp_path, monkeypatch):
    data = os.urandom(300_000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    where = _where(path, [(0, data[:100_000]), (100_000, data[100_000:])])
    hashed = []
    monkeypatch.setattr(content, "chunk_hash", lambda d: hashed.append(d) or chunk_hash(d))
    found = content.read_local_chunks(list(where), where)
    assert [bytes(found[h]) for h in where] == [data[:100_000], data[100_000:]]
    assert hashed == []


def test_the_changed_chunks_of_a_changed_file_are_not_served(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    first, second = data[:100_000], data[100_000:]
    where = _where(path, [(0, first), (100_000, second)])
    changed = bytearray(data)
    changed[150_000] ^= 0xFF  # same size, different content in the second chunk
    path.write_bytes(bytes(changed))
    found = content.read_local_chunks(list(where), where)
    assert bytes(found[chunk_hash(first)]) == first
    assert chunk_hash(second) not in found
