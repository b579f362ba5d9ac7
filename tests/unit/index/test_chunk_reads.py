"""Chunks served from the Real (areas.index.chunk_reads): a file still as indexed is read as
it is; the chunks of a file changed since are checked, and the changed ones are not sent."""

import os

from areas.files import chunk_hash
from areas.index import chunk_reads
from peers.wire import BufferPool


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
    monkeypatch.setattr(chunk_reads, "chunk_hash", lambda d: hashed.append(d) or chunk_hash(d))
    found = chunk_reads.read_local_chunks(list(where), where)
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
    found = chunk_reads.read_local_chunks(list(where), where)
    assert bytes(found[chunk_hash(first)]) == first
    assert chunk_hash(second) not in found


def _indexed(path) -> tuple:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def test_ranges_of_a_blob_are_read_from_a_file_still_as_indexed(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    blob = b"b" * 32
    files = {blob: (str(path), _indexed(path))}
    wanted = [(blob, 200_000, 50_000), (blob, 0, 1000), (blob, 299_000, 5000), (b"x" * 32, 0, 10)]
    found = chunk_reads.read_ranges(wanted, files, BufferPool())
    assert bytes(found[0]) == data[200_000:250_000]
    assert bytes(found[1]) == data[:1000]
    assert found[2] is None  # past the end of the file
    assert found[3] is None  # a blob no file here holds


def test_no_range_is_read_from_a_file_changed_since_it_was_indexed(tmp_path):
    data = os.urandom(100_000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    files = {b"b" * 32: (str(path), _indexed(path))}
    path.write_bytes(os.urandom(100_000))  # same size, other content: not the blob any more
    assert chunk_reads.read_ranges([(b"b" * 32, 0, 1000)], files) == [None]
