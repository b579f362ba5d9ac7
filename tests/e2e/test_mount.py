"""The mount: every area of this peer as one tree, Real files passed through to disk.

Real FUSE mounts in a temporary directory, made by `realize mount` and `realize up`."""

import errno
import os
import signal
import subprocess

import psycopg
import pytest

from tests.appliance import REALIZE, database_url, wait_for

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse"), reason="/dev/fuse is missing: this machine cannot mount"
)


class Mount:
    def __init__(self, appliance, where):
        self.appliance, self.where = appliance, where
        self.log = open(appliance.home / "mount.out", "a")
        self.process = subprocess.Popen(
            [REALIZE, "mount", str(where)], env=appliance.env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._mounted, "the mount")

    def _mounted(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError((self.appliance.home / "mount.out").read_text())
        try:  # a dead mount's root may still stat from the kernel's cache: list it
            return os.path.ismount(self.where) and os.listdir(self.where) is not None
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.log.close()
        return code


@pytest.fixture
def alpha(appliances, tmp_path):
    alpha = appliances("alpha")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "hello.txt").write_text("hello")
    (docs / "sub" / "deep.bin").write_bytes(os.urandom(300_000))
    os.chmod(docs / "sub" / "deep.bin", 0o600)
    alpha.run("area", "add", "docs", str(docs))
    music = tmp_path / "music"
    music.mkdir()
    alpha.run("area", "add", "music", str(music))
    alpha.docs, alpha.music = docs, music
    return alpha


@pytest.fixture
def mounted(alpha, tmp_path):
    where = tmp_path / "mnt"
    where.mkdir()
    mount = Mount(alpha, where)
    yield mount
    if mount.process.poll() is None:
        mount.stop()
    subprocess.run(["fusermount3", "-uz", str(where)], capture_output=True)


def test_the_root_lists_the_areas_and_each_shows_its_files(alpha, mounted):
    m = mounted.where
    assert sorted(os.listdir(m)) == [".realize", "docs", "music"]
    assert sorted(os.listdir(m / "docs")) == ["hello.txt", "sub"]
    assert (m / "docs" / "hello.txt").read_text() == "hello"
    real, shown = alpha.docs / "sub" / "deep.bin", m / "docs" / "sub" / "deep.bin"
    assert shown.read_bytes() == real.read_bytes()
    a, b = os.stat(real), os.stat(shown)
    assert (a.st_size, a.st_mtime_ns, a.st_mode) == (b.st_size, b.st_mtime_ns, b.st_mode)
    with open(shown, "rb") as f:  # reads at odd offsets
        f.seek(12_345)
        assert f.read(777) == real.read_bytes()[12_345 : 12_345 + 777]
    assert os.getxattr(shown, "user.realize.status") == b"real"
    assert os.getxattr(shown, "user.realize.where") == b"here\n"  # no peer to ask
    assert set(os.listxattr(shown)) >= {"user.realize.status", "user.realize.where"}
    # ACLs and security labels are not kept: "not supported", which `ls -l` asks only once.
    with pytest.raises(OSError) as refused:
        os.getxattr(shown, "system.posix_acl_access")
    assert refused.value.errno == errno.ENOTSUP
    # Either side of an open conflict says so.
    with psycopg.connect(database_url(alpha.database), autocommit=True) as db:
        db.execute(
            "INSERT INTO areas_conflict (area_id, path, copy_path, other_origin, description,"
            " created_at) SELECT id, 'hello.txt', 'hello.sync-conflict.txt', '', 'test', now()"
            " FROM areas_area WHERE name = 'docs'"
        )
    assert os.getxattr(m / "docs" / "hello.txt", "user.realize.status") == b"conflict"
    listed = {name for name, _, _ in os.walk(m)}
    assert str(m / "docs" / "sub") in listed


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may widen a mount's read-ahead")
def test_the_kernel_reads_ahead_through_the_mount_in_megabytes(mounted):
    device = os.stat(mounted.where).st_dev
    knob = f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb"
    wait_for(lambda: open(knob).read().strip() == "4096", "the mount's read-ahead")


def test_realize_directory_tells_this_peers_state(alpha, mounted):
    control = mounted.where / ".realize"
    assert sorted(os.listdir(control)) == ["conflicts", "history", "peers", "status"]
    status = (control / "status").read_text()
    assert "Peer alpha" in status and "Areas: 2" in status
    assert f"docs  {alpha.docs}  (real)" in status
    assert "No peers yet" in (control / "peers").read_text()
    assert (control / "conflicts").read_text() == "No open conflicts\n"
    assert sorted(os.listdir(control / "history")) == ["docs", "music"]
    assert (control / "history" / "music").read_text() == "No changes kept\n"
    assert os.stat(control / "status").st_size == len(status.encode())
    for attempt in ("write", "create", "remove"):
        with pytest.raises(OSError) as e:
            if attempt == "write":
                open(control / "status", "w")
            elif attempt == "create":
                (control / "mine").write_text("x")
            else:
                os.unlink(control / "peers")
        assert e.value.errno in (errno.EACCES, errno.EPERM)


def test_a_change_made_on_disk_shows_in_the_mount(alpha, mounted):
    """As the puller's writes do: the names and attributes in memory are dropped."""
    m, disk = mounted.where / "docs", alpha.docs
    assert sorted(os.listdir(m)) == ["hello.txt", "sub"]  # now read, and kept
    (disk / "later.txt").write_text("from elsewhere")
    wait_for(lambda: "later.txt" in os.listdir(m), "the new name in the mount")
    (disk / "hello.txt").write_text("hello, longer")
    wait_for(lambda: os.stat(m / "hello.txt").st_size == 13, "the new size in the mount")
    assert (m / "hello.txt").read_text() == "hello, longer"
    os.rename(disk / "sub", disk / "moved")
    wait_for(lambda: sorted(os.listdir(m)) == ["hello.txt", "later.txt", "moved"], "the move")
    assert sorted(os.listdir(m / "moved")) == ["deep.bin"]
    (disk / "moved" / "deep.bin").unlink()
    wait_for(lambda: os.listdir(m / "moved") == [], "the delete")


def test_an_area_added_again_elsewhere_shows_its_new_directory(alpha, mounted, tmp_path):
    m = mounted.where
    assert (m / "docs" / "hello.txt").read_text() == "hello"  # known, and its page cached
    old_number = os.stat(m / "docs" / "hello.txt").st_ino
    alpha.run("area", "remove", "docs")
    wait_for(lambda: "docs" not in os.listdir(m), "docs gone from the mount")
    other = tmp_path / "other-docs"
    other.mkdir()
    (other / "hello.txt").write_text("hi, from elsewhere")
    alpha.run("area", "add", "docs", str(other))
    wait_for(lambda: "docs" in os.listdir(m), "docs back in the mount")
    assert sorted(os.listdir(m / "docs")) == ["hello.txt"]
    assert (m / "docs" / "hello.txt").read_text() == "hi, from elsewhere"
    assert os.stat(m / "docs" / "hello.txt").st_ino != old_number


def test_inode_numbers_stay_while_mounted_and_follow_a_rename(mounted):
    m = mounted.where / "docs"
    number = os.stat(m / "hello.txt").st_ino
    assert os.stat(m / "hello.txt").st_ino == number
    os.rename(m / "hello.txt", m / "sub" / "moved.txt")
    assert os.stat(m / "sub" / "moved.txt").st_ino == number
    (m / "hello.txt").write_text("new")
    assert os.stat(m / "hello.txt").st_ino != number


def test_every_change_through_the_mount_lands_on_disk(alpha, mounted):
    m, disk = mounted.where / "docs", alpha.docs
    (m / "new.txt").write_text("made in the mount")
    assert (disk / "new.txt").read_text() == "made in the mount"
    with open(m / "new.txt", "r+b") as f:
        f.seek(5)
        f.write(b"MADE")
        f.flush()
        os.fsync(f.fileno())
    assert (disk / "new.txt").read_text() == "made MADEhe mount"
    with open(m / "new.txt", "a") as f:  # write-only: the kernel's cache reads around it
        f.write("!")
    assert (disk / "new.txt").read_text() == "made MADEhe mount!"
    os.truncate(m / "new.txt", 4)
    assert (disk / "new.txt").read_text() == "made"
    os.chmod(m / "new.txt", 0o640)
    assert os.stat(disk / "new.txt").st_mode & 0o777 == 0o640
    os.utime(m / "new.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    assert os.stat(disk / "new.txt").st_mtime_ns == 1_600_000_000_000_000_000
    os.mkdir(m / "dir")
    os.rename(m / "new.txt", m / "dir" / "renamed.txt")
    assert (disk / "dir" / "renamed.txt").read_text() == "made"
    os.symlink("renamed.txt", m / "dir" / "link")
    assert os.readlink(m / "dir" / "link") == "renamed.txt"
    assert os.readlink(disk / "dir" / "link") == "renamed.txt"
    assert (m / "dir" / "link").read_text() == "made"
    os.unlink(m / "dir" / "link")
    os.unlink(m / "dir" / "renamed.txt")
    os.rmdir(m / "dir")
    assert not (disk / "dir").exists()
    os.mkdir(m / "full")
    (m / "full" / "f").write_text("x")
    with pytest.raises(OSError) as e:
        os.rmdir(m / "full")
    assert e.value.errno == errno.ENOTEMPTY


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("hard link", errno.EPERM),
        ("name too long", errno.ENAMETOOLONG),
        ("a file in the root", errno.EPERM),
        ("a rename across areas", errno.EXDEV),
        ("a missing file", errno.ENOENT),
        ("a fifo", errno.EPERM),
    ],
)
def test_refusals_get_the_right_errno(mounted, what, expected):
    m = mounted.where
    with pytest.raises(OSError) as e:
        if what == "hard link":
            os.link(m / "docs" / "hello.txt", m / "docs" / "again.txt")
        elif what == "name too long":
            (m / "docs" / ("x" * 300)).write_text("x")
        elif what == "a file in the root":
            (m / "stray.txt").write_text("x")
        elif what == "a rename across areas":
            os.rename(m / "docs" / "hello.txt", m / "music" / "hello.txt")
        elif what == "a missing file":
            (m / "docs" / "nothing.txt").read_text()
        else:
            os.mkfifo(m / "docs" / "fifo")
    assert e.value.errno == expected
    assert sorted(os.listdir(m)) == [".realize", "docs", "music"]  # and the mount serves on


def test_sigterm_unmounts_and_a_killed_mount_is_recovered(alpha, mounted):
    where = mounted.where
    assert mounted.stop(signal.SIGTERM) == 0
    assert not os.path.ismount(where)
    again = Mount(alpha, where)
    assert again.stop(signal.SIGKILL) == -signal.SIGKILL
    with pytest.raises(OSError) as e:  # the dead mount's directory
        os.listdir(where)
    assert e.value.errno == errno.ENOTCONN
    third = Mount(alpha, where)  # clears the stale mount first
    assert sorted(os.listdir(where)) == [".realize", "docs", "music"]
    assert third.stop() == 0


@pytest.mark.parametrize("case", ["not empty", "inside an area", "missing"])
def test_a_bad_mountpoint_is_one_line(alpha, tmp_path, case):
    if case == "not empty":
        where = tmp_path / "full"
        where.mkdir()
        (where / "x").write_text("x")
        message = "is not empty"
    elif case == "inside an area":
        where = alpha.docs / "sub"
        message = "is inside the area"
    else:
        where = tmp_path / "nowhere"
        message = "does not exist"
    result = alpha.run("mount", str(where), check=False)
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_up_mounts_restarts_a_killed_mount_and_records_a_change_once(alpha, tmp_path):
    where = tmp_path / "mnt"
    where.mkdir()
    alpha.up("--mount", str(where))
    wait_for(lambda: os.path.ismount(where) and os.listdir(where), "up's mount")
    (where / "docs" / "through.txt").write_text("through the mount")

    def recorded():
        with psycopg.connect(database_url(alpha.database)) as conn:
            return conn.execute(
                "SELECT count(*) FROM areas_historyevent WHERE path = 'through.txt'"
            ).fetchone()[0]

    wait_for(recorded, "the watcher to record the change", limit=120)
    state = alpha.up_state()
    os.kill(state["programs"]["mount"]["pid"], signal.SIGKILL)

    def remounted():
        programs = alpha.up_state()["programs"]["mount"]
        return programs["restarts"] == 1 and os.path.ismount(where) and os.listdir(where)

    wait_for(remounted, "the mount to be restarted")
    assert (where / "docs" / "through.txt").read_text() == "through the mount"
    assert recorded() == 1
    changes = (where / ".realize" / "history" / "docs").read_text()
    assert "through.txt  by alpha (here)" in changes
    assert "Real: 3 files" in (where / ".realize" / "status").read_text()
    assert alpha.stop() == 0
    assert not os.path.ismount(where)
