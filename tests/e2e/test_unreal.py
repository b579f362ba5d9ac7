"""An Unreal area: consensus brings its files' metadata but no content; the mount shows them,
and a read fetches the content from a peer, checked, into the cache."""

import errno
import os
import subprocess

import pytest

from tests.appliance import wait_for
from tests.household import AREA, make_household

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse"), reason="/dev/fuse is missing: this machine cannot mount"
)


@pytest.fixture
def pair(tmp_path):
    made = []
    members = make_household(tmp_path, ["alpha", "beta"], unreal={"beta"})
    made.extend(members)
    alpha, beta = members
    where = tmp_path / "mnt-beta"
    where.mkdir()
    beta.stop()
    beta.up("--mount", str(where))
    wait_for(lambda: os.path.ismount(where) and os.listdir(where), "beta's mount")
    yield alpha, beta, where / AREA
    for m in made:
        m.destroy()
    subprocess.run(["fusermount3", "-uz", str(where)], capture_output=True)


def test_unreal_files_show_in_the_mount_and_read_from_the_peer(pair):
    alpha, beta, mounted = pair
    big = os.urandom(5 * 1024 * 1024 + 123)
    (alpha.dir / "sub").mkdir()
    (alpha.dir / "sub" / "big.bin").write_bytes(big)
    (alpha.dir / "small.txt").write_text("small")
    (alpha.dir / "empty").write_bytes(b"")
    os.utime(alpha.dir / "small.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    beta.consensus(alpha)

    assert os.listdir(beta.dir) == []  # nothing on beta's disk
    wait_for(lambda: sorted(os.listdir(mounted)) == ["empty", "small.txt", "sub"], "the tree")
    shown = os.stat(mounted / "small.txt")
    assert (shown.st_size, shown.st_mtime_ns) == (5, 1_600_000_000_000_000_000)
    assert os.stat(mounted / "sub" / "big.bin").st_size == len(big)
    assert os.getxattr(mounted / "small.txt", "user.realize.status").startswith(b"unreal")

    assert (mounted / "small.txt").read_text() == "small"
    assert (mounted / "empty").read_bytes() == b""
    with open(mounted / "sub" / "big.bin", "rb") as f:  # odd offsets first, then all of it
        for offset, size in [(3_000_001, 77), (12_345, 100_000), (len(big) - 10, 100)]:
            f.seek(offset)
            assert f.read(size) == big[offset : offset + size]
        f.seek(0)
        assert f.read() == big
    assert os.getxattr(mounted / "sub" / "big.bin", "user.realize.status") == (
        b"unreal 100% cached"
    )
    assert os.listdir(beta.dir) == []

    # A change pulled later shows without a remount.
    (alpha.dir / "small.txt").write_text("small, then edited")
    (alpha.dir / "new.txt").write_text("new")
    beta.consensus(alpha)
    wait_for(lambda: "new.txt" in os.listdir(mounted), "the new file in the mount")
    wait_for(lambda: (mounted / "small.txt").read_text() == "small, then edited", "the edit")

    # Writing needs the file realized first: not yet, and refused cleanly.
    with pytest.raises(OSError) as e:
        (mounted / "small.txt").write_text("x")
    assert e.value.errno == errno.EROFS

    # Offline: what is cached reads, what is not fails (EIO), the listing still works.
    alpha.stop()
    assert (mounted / "sub" / "big.bin").read_bytes() == big
    with pytest.raises(OSError) as e:
        (mounted / "new.txt").read_text()
    assert e.value.errno == errno.EIO
    assert "new.txt" in os.listdir(mounted)
