"""An Unreal area: consensus brings its files' metadata but no content; the mount shows them,
and a read fetches the content from a peer, checked, into the cache."""

import concurrent.futures
import errno
import os
import subprocess
import time

import blake3
import pytest

from tests.appliance import free_port, wait_for
from tests.browser import browser_page, log_in
from tests.fakepeer import FakePeer
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
    # Where the content is: alpha holds it; beta only knows of it.
    assert os.getxattr(mounted / "small.txt", "user.realize.where") == b"alpha\n"
    assert "user.realize.where" in os.listxattr(mounted / "small.txt")
    status = mounted.parent / ".realize" / "status"
    wait_for(lambda: "alpha: nothing of theirs to take" in status.read_text(), "status")

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

    # Offline: what is cached reads, what is not fails (EIO), the listing still works.
    alpha.stop()
    assert (mounted / "sub" / "big.bin").read_bytes() == big
    with pytest.raises(OSError) as e:
        (mounted / "new.txt").read_text()
    assert e.value.errno == errno.EIO
    assert "new.txt" in os.listdir(mounted)
    assert os.getxattr(mounted / "new.txt", "user.realize.where") == (
        b"alpha: not connected, unknown\n"
    )
    wait_for(lambda: "alpha: what it has for us is unknown" in status.read_text(), "status")


def test_changing_an_unreal_file_realizes_it_first(pair):
    """A write, a truncate or a rename fetches the file whole into beta's disk first; a
    delete needs nothing fetched; each is a change like any other, and reaches alpha. A
    peer's later change makes a realized file Unreal again. With alpha gone, a file not
    cached cannot be realized: EIO, and it stays as it was."""
    alpha, beta, mounted = pair
    big = os.urandom(3 * 1024 * 1024 + 5)
    (alpha.dir / "notes.txt").write_text("alpha's")
    (alpha.dir / "big.bin").write_bytes(big)
    (alpha.dir / "moved.txt").write_text("moved")
    (alpha.dir / "gone.txt").write_text("gone")
    (alpha.dir / "far").mkdir()
    (alpha.dir / "far" / "later.txt").write_text("later")
    (alpha.dir / "far" / "over.txt").write_text("to be written over")
    beta.consensus(alpha)
    wait_for(lambda: "notes.txt" in os.listdir(mounted), "the tree")

    with open(mounted / "notes.txt", "a") as f:
        f.write(" and beta's")
    assert (beta.dir / "notes.txt").read_text() == "alpha's and beta's"
    assert os.getxattr(mounted / "notes.txt", "user.realize.status") == b"real"
    os.truncate(mounted / "big.bin", 1000)
    assert (beta.dir / "big.bin").read_bytes() == big[:1000]
    os.rename(mounted / "moved.txt", mounted / "renamed.txt")
    assert (beta.dir / "renamed.txt").read_text() == "moved"
    os.unlink(mounted / "gone.txt")
    assert not (beta.dir / "gone.txt").exists()
    shown = sorted(os.listdir(mounted))
    assert shown == ["big.bin", "far", "notes.txt", "renamed.txt"]
    assert sorted(os.listdir(beta.dir)) == ["big.bin", "notes.txt", "renamed.txt"]

    beta.consensus(alpha)
    assert (alpha.dir / "notes.txt").read_text() == "alpha's and beta's"
    assert (alpha.dir / "big.bin").read_bytes() == big[:1000]
    assert sorted(os.listdir(alpha.dir)) == ["big.bin", "far", "notes.txt", "renamed.txt"]
    status = (mounted.parent / ".realize" / "status").read_text()
    assert "Real: 3 files" in status and "Unreal: 2 files" in status

    # alpha changes a file realized on beta: on beta it is alpha's, and Unreal again.
    (alpha.dir / "notes.txt").write_text("alpha again")
    beta.consensus(alpha)
    wait_for(lambda: not (beta.dir / "notes.txt").exists(), "notes.txt Unreal again")
    assert (mounted / "notes.txt").read_text() == "alpha again"
    assert os.getxattr(mounted / "notes.txt", "user.realize.status").startswith(b"unreal")

    alpha.stop()
    with pytest.raises(OSError) as e:  # an append needs the content first
        with open(mounted / "far" / "later.txt", "a") as f:
            f.write("x")
    assert e.value.errno == errno.EIO
    assert not (beta.dir / "far" / "later.txt").exists()
    assert os.stat(mounted / "far" / "later.txt").st_size == len("later")
    # Written over from nothing (O_TRUNC): nothing to fetch, so it works offline.
    (mounted / "far" / "over.txt").write_text("new")
    assert (beta.dir / "far" / "over.txt").read_text() == "new"
    assert (mounted / "far" / "over.txt").read_text() == "new"


CHUNK = 64 * 1024


@pytest.fixture
def beta_with_mallory(appliances, tmp_path):
    """beta, its area Unreal and mounted, and mallory, a peer saying what the test says."""
    beta = appliances("beta", listen=f"127.0.0.1:{free_port()}")
    (tmp_path / "area-beta").mkdir()
    beta.run("area", "add", AREA, str(tmp_path / "area-beta"), "--mode", "unreal")
    fake = FakePeer(tmp_path / "home-mallory", beta.peer_id)
    beta.run("peer", "add", "mallory", fake.peer_id, "--address", fake.address)
    where = tmp_path / "mnt"
    where.mkdir()
    beta.up("--mount", str(where))
    wait_for(lambda: os.path.ismount(where) and os.listdir(where), "beta's mount")
    yield beta, fake, where / AREA
    beta.stop()
    fake.close()
    subprocess.run(["fusermount3", "-uz", str(where)], capture_output=True)


def test_a_wrong_chunk_is_never_served_and_concurrent_readers_fetch_each_once(
    beta_with_mallory,
):
    beta, fake, mounted = beta_with_mallory
    content = os.urandom(8 * CHUNK + 1000)
    pieces = [content[i : i + CHUNK] for i in range(0, len(content), CHUNK)]
    by_hash = {blake3.blake3(p).digest(): p for p in pieces}
    blob = blake3.blake3(content).digest()
    event = {
        "seq": 1, "kind": "create", "path": "film.bin", "old_path": "", "blob": blob,
        "base": None, "size": len(content), "mtime_ns": 1_700_000_000_000_000_000,
        "mode": 0o644, "origin": b"m" * 32, "origin_seq": 1, "version": [[b"m" * 32, 1]],
    }  # fmt: skip
    unread = os.urandom(3 * CHUNK)  # another file, of one chunk, never read before
    other = {**event, "seq": 2, "path": "other.bin", "origin_seq": 2, "blob": blake3.blake3(
        unread).digest(), "size": len(unread), "version": [[b"m" * 32, 2]]}  # fmt: skip
    fake.answers.update(
        {
            "areas": lambda args: [AREA],
            "begin": lambda args: {"head": 2},
            "history": lambda args: {"events": [event, other], "next": 2, "more": False},
            "blobs": lambda args: {blob: [[blake3.blake3(p).digest(), len(p)] for p in pieces]},
            "chunks": lambda args: [b"X" * len(by_hash[h]) for h in args["hashes"]],
            "pull": lambda args: {"files": 0, "bytes": 0, "conflicts": 0, "errors": []},
        }
    )
    beta.run("consensus", AREA, "--peer", "mallory", timeout=300)
    wait_for(lambda: "film.bin" in os.listdir(mounted), "the file in the mount")

    with pytest.raises(OSError) as e:  # every chunk sent wrong: discarded, nothing served
        (mounted / "film.bin").read_bytes()
    assert e.value.errno == errno.EIO
    assert os.getxattr(mounted / "film.bin", "user.realize.status") == b"unreal 0% cached"

    fake.answers["chunks"] = lambda args: [by_hash[h] for h in args["hashes"]]
    fake.requests.clear()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        reads = list(pool.map(lambda _: (mounted / "film.bin").read_bytes(), range(4)))
    assert all(r == content for r in reads)
    asked = [h for op, args in fake.requests if op == "chunks" for h in args["hashes"]]
    assert sorted(asked) == sorted(by_hash)  # each chunk once, however many readers

    # Connected, and answering nothing: the read fails (EIO), it does not hang.
    fake.silent = True
    with pytest.raises(OSError) as e:
        with open(mounted / "other.bin", "rb") as f:
            f.read(100)
    assert e.value.errno == errno.EIO


def test_an_unreal_area_made_real_gets_every_file_onto_the_disk(pair):
    alpha, beta, mounted = pair
    big = os.urandom(3 * 1024 * 1024 + 5)
    (alpha.dir / "sub").mkdir()
    (alpha.dir / "sub" / "big.bin").write_bytes(big)
    (alpha.dir / "small.txt").write_text("small")
    beta.consensus(alpha)
    assert os.listdir(beta.dir) == []

    out = beta.run("area", "edit", AREA, "--mode", "real").stdout
    assert "becomes Real once the mount has fetched its 2 Unreal files" in out
    wait_for(lambda: "docs  real" in beta.run("area", "list").stdout, "beta's area Real")
    assert (beta.dir / "sub" / "big.bin").read_bytes() == big
    assert (beta.dir / "small.txt").read_text() == "small"
    # Real now: a change made here goes to alpha as any other, and the mount passes it.
    (beta.dir / "small.txt").write_text("small, edited on beta")
    beta.consensus(alpha)
    assert (alpha.dir / "small.txt").read_text() == "small, edited on beta"
    wait_for(lambda: os.getxattr(mounted / "small.txt", "user.realize.status") == b"real",
             "the mount shows it Real")  # fmt: skip

    # And back: Unreal again keeps the files here.
    assert "is unreal" in beta.run("area", "edit", AREA, "--mode", "unreal").stdout
    assert (beta.dir / "sub" / "big.bin").read_bytes() == big


def test_a_conflict_with_an_unreal_side_is_resolved_in_the_browser(pair):
    """Keeping a copy whose content is not on beta's disk: the mount fetches it, then the
    choice is carried out, and alpha takes it."""
    alpha, beta, mounted = pair
    (alpha.dir / "notes.txt").write_text("first")
    beta.consensus(alpha)
    wait_for(lambda: "notes.txt" in os.listdir(mounted), "the tree")
    (alpha.dir / "notes.txt").write_text("alpha's, longer")
    time.sleep(0.05)
    (mounted / "notes.txt").write_text("beta's, the later")  # the later keeps the path
    beta.consensus(alpha)
    ((pk, copy),) = beta.sql(
        "SELECT id, copy_path FROM areas_conflict WHERE resolved_at IS NULL AND copy_path <> ''"
    )
    wait_for(lambda: copy in os.listdir(mounted), "the copy in the mount")
    assert copy not in os.listdir(beta.dir)  # alpha's version: Unreal on beta
    kept = (mounted / copy).read_text()  # through the mount, fetched
    with browser_page() as page:
        log_in(page, beta.url, "admin", beta.admin_password)
        page.goto(f"{beta.url}/areas/{AREA}/conflicts/{pk}/")
        page.check("input[name=keep][value=copy]")
        page.click("button:has-text('Resolve')")
        page.wait_for_selector(".messages")
    wait_for(
        lambda: beta.sql("SELECT resolved_at IS NOT NULL FROM areas_conflict WHERE id = %s", pk)
        == [(True,)],
        "the conflict resolved on beta",
    )
    assert (beta.dir / "notes.txt").read_text() == kept
    beta.consensus(alpha)
    assert (alpha.dir / "notes.txt").read_text() == kept
    assert copy not in os.listdir(alpha.dir)
