"""Staged content is written whole, byte for byte, directly to the device or through the
page cache, whatever the sizes of the parts and wherever the file lies."""

import os
import random
import tempfile
from pathlib import Path

import blake3
import pytest

from areas.files import writers


def _write(path: Path, parts: list[bytes]) -> str:
    """Write the parts; the writer's hash of what it wrote must be the content's."""
    size = sum(len(p) for p in parts)
    hasher = blake3.blake3()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        writer = writers.content_writer(fd, size, hasher)
        for part in parts:
            writer.add(part)
        writer.finish()
    finally:
        os.close(fd)
    assert hasher.digest() == blake3.blake3(b"".join(parts)).digest()
    return type(writer).__name__


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [2000],
        [writers.DIRECT_FROM],
        [writers.DIRECT_FROM + 1],
        [1, writers.WRITE_BYTES, 4095, 17, writers.WRITE_BYTES - 5, 3 * writers.ALIGN],
        [130_000] * 40,
    ],
)
def test_content_is_written_exactly(tmp_path, sizes):
    rng = random.Random(sum(sizes))
    parts = [rng.randbytes(n) for n in sizes]
    target = tmp_path / "file"
    kind = _write(target, parts)
    assert target.read_bytes() == b"".join(parts)
    assert kind == ("DirectWriter" if sum(sizes) >= writers.DIRECT_FROM else "BufferedWriter")


def test_a_filesystem_without_direct_io_gets_the_page_cache():
    """tmpfs refuses O_DIRECT (on older kernels): the file is written all the same."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm here")
    data = random.Random(7).randbytes(writers.DIRECT_FROM * 3 + 123)
    with tempfile.TemporaryDirectory(dir=shm) as where:
        target = Path(where) / "file"
        _write(target, [data[: len(data) // 2], data[len(data) // 2 :]])
        assert target.read_bytes() == data


def test_a_refused_direct_write_falls_back(tmp_path, monkeypatch):
    """A direct write the kernel refuses is written through the page cache instead."""
    real_pwrite = os.pwrite
    refused = []

    def pwrite(fd, data, offset):
        if not refused:
            refused.append(offset)
            raise OSError(22, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(writers.os, "pwrite", pwrite)
    data = random.Random(8).randbytes(writers.WRITE_BYTES + writers.DIRECT_FROM + 5)
    _write(tmp_path / "file", [data])
    assert refused == [0]
    assert (tmp_path / "file").read_bytes() == data


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB filesystem of its own (tmpfs), to fill."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_write_once_and_gives_the_buffer_back_once(small_disk):
    """The stager finishes a failed job's writer again as it cleans up: that must do nothing
    (it once raised, killing the stager's finishing thread, and gave a buffer back twice)."""
    fd = os.open(small_disk / "big", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        writer = writers.content_writer(fd, 3 * 1024 * 1024)
        with pytest.raises(OSError) as failed:
            writer.add(os.urandom(3 * 1024 * 1024))
            writer.finish()
        assert failed.value.errno == 28  # ENOSPC
        writer.finish()  # again, as a cleanup does: nothing happens
    finally:
        os.close(fd)
