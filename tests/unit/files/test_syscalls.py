"""System calls that keep the GIL: the same answers as os gives."""

import errno
import os

import pytest

from areas.files import syscalls

pytestmark = pytest.mark.skipif(not syscalls.available, reason="renameat2 and statx only")


def test_lstat_reads_what_os_reads(tmp_path):
    path = tmp_path / "file é.txt"
    path.write_bytes(b"x" * 1234)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    os.chmod(path, 0o640)
    expected = os.lstat(path)
    found = syscalls.lstat(str(path))
    for name in syscalls.Status._fields:
        assert getattr(found, name) == getattr(expected, name), name


def test_lstat_does_not_follow_a_symlink_and_says_what_is_missing(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    assert syscalls.lstat(str(link)).st_ino == os.lstat(link).st_ino
    with pytest.raises(FileNotFoundError):
        syscalls.lstat(str(tmp_path / "nowhere"))


def test_rename_never_replaces(tmp_path):
    source, target = tmp_path / "a", tmp_path / "b"
    source.write_text("new")
    target.write_text("old")
    assert syscalls.rename_noreplace(str(source), str(target)) == errno.EEXIST
    assert target.read_text() == "old" and source.exists()
    target.unlink()
    assert syscalls.rename_noreplace(str(source), str(target)) == 0
    assert target.read_text() == "new" and not source.exists()
    assert syscalls.rename_noreplace(str(source), str(target)) == errno.ENOENT


def test_read_small_reads_up_to_its_limit(tmp_path):
    path = tmp_path / "small é"
    data = os.urandom(5000)
    path.write_bytes(data)
    assert syscalls.read_small(str(path), 10_000) == data
    assert syscalls.read_small(str(path), 100) == data[:100]
    (tmp_path / "empty").write_bytes(b"")
    assert syscalls.read_small(str(tmp_path / "empty"), 100) == b""
    with pytest.raises(FileNotFoundError):
        syscalls.read_small(str(tmp_path / "nowhere"), 100)
    with pytest.raises(IsADirectoryError):
        syscalls.read_small(str(tmp_path), 100)


def test_write_new_makes_the_file_with_its_content_mode_and_time(tmp_path):
    path = tmp_path / "new é"
    device = syscalls.write_new(str(path), b"hello" * 1000, 0o6755 & 0o777, 1_600_000_000_5)
    st = os.lstat(path)
    assert path.read_bytes() == b"hello" * 1000 and device == st.st_dev
    assert (st.st_mode & 0o7777, st.st_mtime_ns) == (0o755, 1_600_000_000_5)
    old = os.umask(0o077)
    try:
        syscalls.write_new(str(tmp_path / "shared"), b"", 0o664, 0)
    finally:
        os.umask(old)
    assert os.lstat(tmp_path / "shared").st_mode & 0o7777 == 0o664  # not cut by the umask
    with pytest.raises(FileExistsError):
        syscalls.write_new(str(path), b"other", 0o644, 0)
    assert path.read_bytes() == b"hello" * 1000
    with pytest.raises(FileNotFoundError):
        syscalls.write_new(str(tmp_path / "missing" / "file"), b"x", 0o644, 0)
