"""Peers of a household converge: every kind of change, both directions, two and three peers."""

import datetime
import os
import shutil

import pytest

from tests.appliance import wait_for
from tests.browser import browser_page, log_in, screenshots
from tests.household import AREA, Member, make_household, mtimes, transferred, tree

MiB = 1024 * 1024


@pytest.fixture
def household(tmp_path):
    made = []

    def make(*names, deaf=()):
        members = make_household(tmp_path, list(names), set(deaf))
        made.extend(members)
        return members

    yield make
    for member in made:
        member.destroy()


def write(path, data: bytes, mode: int | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)


def test_two_peers_converge_on_every_kind_of_change(household):
    a, b = household("alpha", "beta")
    big = os.urandom(8 * MiB)
    write(a.dir / "top.txt", b"top\n")
    write(a.dir / "empty", b"")
    write(a.dir / "nested/deeper/still/file.txt", b"deep\n", mode=0o600)
    write(a.dir / "café/naïve file ünïcödé.txt", "grüße\n".encode())
    write(a.dir / "with space.txt", b"spaces\n")
    write(a.dir / "run.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
    write(a.dir / "big.bin", big)
    write(a.dir / "docs/one.txt", b"one\n")
    write(a.dir / "docs/two.txt", b"two\n")

    a.consensus(b)
    assert tree(b.dir) == tree(a.dir)
    assert mtimes(b.dir) == mtimes(a.dir)

    # An edit in the middle of a large file moves what changed, not the file, nor even the
    # chunks around it (areas.pull.patches: they are 16-128 KiB).
    edited = bytearray(big)
    edited[4 * MiB : 4 * MiB + 100] = os.urandom(100)
    write(a.dir / "big.bin", bytes(edited))
    with open(a.dir / "top.txt", "ab") as f:
        f.write(b"appended\n")
    (a.dir / "with space.txt").unlink()
    (a.dir / "café/naïve file ünïcödé.txt").rename(a.dir / "café/renamed.txt")
    (a.dir / "docs").rename(a.dir / "papers")
    _, sent = transferred(a.consensus(b).stdout)
    assert sent < 48 * 1024
    assert tree(b.dir) == tree(a.dir)
    assert not (b.dir / "docs").exists()

    # 4 KiB inserted in the middle shifts everything after it, and still moves little.
    inserted = bytes(edited[: 3 * MiB]) + os.urandom(4096) + bytes(edited[3 * MiB :])
    write(a.dir / "big.bin", inserted)
    _, sent = transferred(a.consensus(b).stdout)
    assert sent < 48 * 1024
    assert tree(b.dir) == tree(a.dir)

    # Changes on the other side come back with the same command (beta's own automatic
    # consensus may carry them first: either way they are there when the command exits).
    write(b.dir / "from-beta/new.txt", b"made on beta\n")
    (b.dir / "empty").unlink()
    (b.dir / "run.sh").write_bytes(b"#!/bin/sh\necho changed\n")
    a.consensus(b)
    assert tree(a.dir) == tree(b.dir)
    assert (a.dir / "from-beta/new.txt").read_bytes() == b"made on beta\n"
    assert not (a.dir / "empty").exists()


def test_three_peers_converge_through_each_other(household, monkeypatch):
    monkeypatch.setenv("REALIZE_HISTORY_KEPT", "0")  # no feed: trimmed as far as it can be
    a, b, c = household("alpha", "beta", "gamma")
    write(a.dir / "from-a.txt", b"a\n")
    write(a.dir / "shared/notes.txt", b"v1\n")
    a.consensus(b)
    b.consensus(c)
    assert tree(c.dir) == tree(a.dir)

    write(c.dir / "shared/notes.txt", b"v2 from gamma\n")
    (c.dir / "from-a.txt").unlink()
    c.consensus(b)
    b.consensus(a)
    assert tree(a.dir) == tree(b.dir) == tree(c.dir)
    assert (a.dir / "shared/notes.txt").read_bytes() == b"v2 from gamma\n"

    # History every sharing peer has applied is trimmed.
    a.consensus(c)
    c.consensus(b)
    b.consensus(a)
    a.consensus(c)
    remaining = a.sql("SELECT count(*) FROM areas_historyevent")[0][0]
    total = a.sql("SELECT history_seq FROM areas_area")[0][0]
    assert total > 0 and remaining < total


def test_a_deaf_peer_syncs_with_a_listening_one(household):
    listening, deaf = household("alpha", "laptop", deaf=["laptop"])
    write(listening.dir / "on-server.txt", b"server\n")
    write(deaf.dir / "on-laptop.txt", b"laptop\n")
    deaf.consensus(listening)
    assert tree(deaf.dir) == tree(listening.dir)
    write(listening.dir / "later.txt", b"later\n")
    listening.consensus(deaf)  # over the connection the deaf peer made
    assert (deaf.dir / "later.txt").read_bytes() == b"later\n"


def test_the_consensus_command_fails_in_one_line_through_peerd(household):
    """With peerd up, `realize consensus` is carried out by peerd (realize_site.fast_consensus): its
    failures read exactly as the full command line's."""
    a, b = household("alpha", "beta")
    for args, message in [
        (["nosuch"], "realize: error: no area named 'nosuch'"),
        ([AREA, "--peer", "ghost"], "realize: error: no peer named 'ghost' in the household"),
        ([AREA, "--peer=ghost"], "realize: error: no peer named 'ghost' in the household"),
    ]:
        result = a.run("consensus", *args, check=False)
        assert (result.returncode, result.stderr.strip(), result.stdout) == (1, message, "")
    write(b.dir / "note.txt", b"note\n")
    result = a.run("consensus", f"--peer={b.name}", AREA)
    assert result.stdout.startswith(f"{AREA} with {b.name}: done; received 1 files")
    assert (a.dir / "note.txt").read_bytes() == b"note\n"
    write(b.dir / "second.txt", b"second\n")
    result = a.run("consensus", AREA)  # every connected peer that shares the area
    assert result.stdout.startswith(f"{AREA} with {b.name}: done; received 1 files")
    usage = a.run("consensus", check=False)  # not for peerd: argparse's usage message
    assert usage.returncode == 2 and "usage: realize consensus" in usage.stderr


def test_concurrent_edits_keep_both_versions_on_both_peers(household):
    a, b = household("alpha", "beta")
    write(a.dir / "report.txt", b"original\n")
    write(a.dir / "plan.txt", b"plan\n")
    a.consensus(b)

    write(a.dir / "report.txt", b"alpha's version\n")
    write(b.dir / "report.txt", b"beta's version\n")
    (a.dir / "plan.txt").unlink()
    write(b.dir / "plan.txt", b"plan, edited on beta\n")
    a.consensus(b)
    a.consensus(b)

    assert tree(a.dir) == tree(b.dir)
    contents = sorted(p.read_bytes() for p in a.dir.glob("report*"))
    assert contents == [b"alpha's version\n", b"beta's version\n"]
    copies = [p.name for p in a.dir.glob("report.sync-conflict-*.txt")]
    assert len(copies) == 1
    # An edit and a delete: the edit survives.
    assert (a.dir / "plan.txt").read_bytes() == b"plan, edited on beta\n"
    assert a.sql("SELECT count(*) FROM areas_conflict")[0][0] >= 1


def test_consensus_starts_by_itself(household):
    a, b = household("alpha", "beta")
    write(a.dir / "keep.txt", b"keep\n")
    write(a.dir / "gone.txt", b"gone\n")
    a.consensus(b)
    a.sql("UPDATE areas_area SET rest_seconds = 1")

    (a.dir / "gone.txt").unlink()  # a delete starts consensus at once
    wait_for(lambda: not (b.dir / "gone.txt").exists(), "the delete to reach beta", limit=120)
    write(a.dir / "created.txt", b"new\n")  # a create, after the rest period
    wait_for(lambda: (b.dir / "created.txt").exists(), "the create to reach beta", limit=120)
    assert tree(a.dir) == tree(b.dir)
    triggers = {t for (t,) in a.sql("SELECT trigger FROM areas_consensusrun")}
    assert "auto" in triggers


def test_a_removed_directory_goes_everywhere(household):
    a, b = household("alpha", "beta")
    write(a.dir / "photos/2024/a.jpg", os.urandom(1000))
    write(a.dir / "photos/2024/b.jpg", os.urandom(1000))
    a.consensus(b)
    shutil.rmtree(a.dir / "photos")
    a.consensus(b)
    assert tree(b.dir) == {}
    assert not (b.dir / "photos").exists()


def test_a_permission_change_alone_goes_everywhere(household):
    a, b = household("alpha", "beta")
    write(a.dir / "tool.sh", b"#!/bin/sh\necho tool\n", mode=0o644)
    a.consensus(b)
    (a.dir / "tool.sh").chmod(0o750)
    a.consensus(b)
    assert (b.dir / "tool.sh").stat().st_mode & 0o7777 == 0o750
    assert tree(b.dir) == tree(a.dir)


def test_a_new_modification_time_alone_goes_everywhere_and_settles(household):
    a, b = household("alpha", "beta")
    write(a.dir / "photo.jpg", b"not really a photo\n")
    a.consensus(b)
    older = 1_500_000_000_123_456_789  # a date put right, content untouched
    os.utime(a.dir / "photo.jpg", ns=(older, older))
    a.consensus(b)
    assert (b.dir / "photo.jpg").stat().st_mtime_ns == older
    assert mtimes(b.dir) == mtimes(a.dir) and tree(b.dir) == tree(a.dir)

    newer = 1_700_000_000_000_000_000  # and the other way, touched on beta
    os.utime(b.dir / "photo.jpg", ns=(newer, newer))
    b.consensus(a)
    assert (a.dir / "photo.jpg").stat().st_mtime_ns == newer
    # Nothing bounces back: a further consensus has nothing to exchange.
    output = a.consensus(b).stdout
    assert "received 0 files" in output and "sent 0 files" in output
    assert mtimes(b.dir) == mtimes(a.dir) == {"photo.jpg": newer}


def test_a_change_that_could_not_be_applied_is_applied_by_the_next_run(household):
    a, b = household("alpha", "beta")
    (b.dir / "report").mkdir()  # an empty directory on beta where alpha has a file
    write(a.dir / "report", b"alpha's report\n")
    write(a.dir / "other.txt", b"other\n")
    result = b.consensus(a, check=False)
    assert result.returncode != 0 and "report" in result.stderr
    assert (b.dir / "other.txt").read_bytes() == b"other\n"  # the rest went through

    (b.dir / "report").rmdir()
    b.consensus(a)
    assert (b.dir / "report").read_bytes() == b"alpha's report\n"


def test_a_peer_joining_late_learns_of_deletes_made_before_it(household, tmp_path, monkeypatch):
    monkeypatch.setenv("REALIZE_HISTORY_KEPT", "0")  # no feed: trimmed as far as it can be
    a, b = household("alpha", "beta")
    write(a.dir / "old-draft.txt", b"an old draft\n")
    write(a.dir / "kept.txt", b"kept\n")
    a.consensus(b)
    (a.dir / "old-draft.txt").unlink()
    a.consensus(b)
    a.consensus(b)  # both acknowledged: the history of the delete is trimmed
    assert a.sql("SELECT count(*) FROM areas_historyevent WHERE path = 'old-draft.txt'") == [(0,)]

    # A new peer starts from an old copy of the area, with the draft still in it.
    late = Member(tmp_path, "gamma")
    try:
        late.init(late.listen)
        write(late.dir / "old-draft.txt", b"an old draft\n")
        late.run("peer", "add", a.name, a.peer_id, "--address", a.listen)
        a.run("peer", "add", late.name, late.peer_id, "--address", late.listen)
        late.run("area", "add", AREA, str(late.dir))
        late.up()
        late.consensus(a)
        a.consensus(late)
        assert not (late.dir / "old-draft.txt").exists()
        assert not (a.dir / "old-draft.txt").exists()
        assert (late.dir / "kept.txt").read_bytes() == b"kept\n"
    finally:
        late.destroy()


def test_a_file_restored_on_another_peer_after_its_delete_comes_back_everywhere(household):
    """The same content again, made knowing of the delete, is a new version: not a late copy
    of the deleted one."""
    a, b = household("alpha", "beta")
    write(a.dir / "letter.txt", b"dear all\n")
    a.consensus(b)
    (a.dir / "letter.txt").unlink()
    a.consensus(b)
    assert not (b.dir / "letter.txt").exists()
    write(b.dir / "letter.txt", b"dear all\n")  # restored from a backup
    b.consensus(a)
    assert (a.dir / "letter.txt").read_bytes() == b"dear all\n"
    assert (b.dir / "letter.txt").read_bytes() == b"dear all\n"


def test_a_peer_joining_with_an_empty_area_gets_it_when_it_connects(tmp_path):
    """No command, no change anywhere: the newcomer starts its first run itself (it pulls
    first), as soon as it meets a peer with history in the area."""
    a, b = Member(tmp_path, "alpha"), Member(tmp_path, "beta")
    try:
        for m in (a, b):
            m.init(m.listen)
        for m, other in ((a, b), (b, a)):
            m.run("peer", "add", other.name, other.peer_id, "--address", other.listen)
            m.run("area", "add", AREA, str(m.dir))
        write(a.dir / "photos/one.jpg", b"one\n")
        write(a.dir / "notes.txt", b"notes\n")
        a.up()
        indexed = "SELECT count(*) FROM areas_historyevent"
        wait_for(lambda: a.sql(indexed) == [(2,)], "alpha to index its files")

        b.up()
        wait_for(lambda: tree(b.dir) == tree(a.dir), "beta to get alpha's files")
        runs = "SELECT trigger FROM areas_consensusrun WHERE trigger = 'join'"
        assert b.sql(runs) == [("join",)]
        assert a.sql(runs) == []  # alpha, no newcomer, leaves the first run to beta
    finally:
        for m in (a, b):
            m.destroy()


def test_a_peer_that_was_away_is_caught_up_when_it_connects_again(household):
    a, b = household("alpha", "beta")
    write(a.dir / "before.txt", b"before\n")
    a.consensus(b)
    b.stop()

    # Made while beta is away: alpha indexes them, and its automatic runs find no one.
    write(a.dir / "while-away.txt", b"made while beta was away\n")
    (a.dir / "before.txt").unlink()
    wait_for(
        lambda: (
            a.sql("SELECT count(*) FROM areas_historyevent WHERE kind = 'delete'") == [(1,)]
            and a.sql("SELECT count(*) FROM areas_historyevent WHERE path = 'while-away.txt'")
            == [(1,)]
        ),
        "alpha to index the changes",
    )
    runs = "SELECT count(*) FROM areas_consensusrun WHERE trigger = 'reconnect'"
    assert a.sql(runs) == [(0,)]

    b.up()  # no command: connecting is enough
    wait_for(lambda: (b.dir / "while-away.txt").exists(), "beta to get the new file")
    wait_for(lambda: not (b.dir / "before.txt").exists(), "beta to apply the delete")
    assert (b.dir / "while-away.txt").read_bytes() == b"made while beta was away\n"
    done = "SELECT count(*) FROM areas_consensusrun WHERE trigger = 'reconnect' AND status = 'done'"
    wait_for(lambda: a.sql(done) == [(1,)], "alpha's catch-up run to be recorded")


def test_a_conflict_resolved_in_the_browser_is_resolved_on_the_other_peer(household, tmp_path):
    a, b = household("alpha", "beta")
    write(a.dir / "report.txt", b"original\n")
    a.consensus(b)
    write(a.dir / "report.txt", b"alpha's version\nline two\n")
    write(b.dir / "report.txt", b"beta's version\nline two\n")
    a.consensus(b)
    a.consensus(b)
    [copy] = [p.name for p in a.dir.glob("report.sync-conflict-*.txt")]
    opened = "SELECT count(*) FROM areas_conflict WHERE resolved_at IS NULL AND copy_path = %s"
    assert a.sql(opened, copy)[0][0] == 1 and b.sql(opened, copy)[0][0] == 1

    with browser_page() as page:
        log_in(page, a.url, "admin", a.admin_password)
        page.goto(f"{a.url}/areas/{AREA}/")
        page.click("#conflicts >> text=report.txt")
        diff = page.locator("pre.diff").inner_text()
        assert "-" in diff and "+" in diff and "version" in diff
        screenshots(page, "conflict", tmp_path)
        page.check("input[name=keep][value=both]")
        page.fill("input[name=new_name]", "report (the other one).txt")
        page.click("button:text-is('Resolve')")
        assert "Resolved" in page.locator(".messages").inner_text()
    assert not (a.dir / copy).exists() and (a.dir / "report (the other one).txt").exists()
    # The rename travels like any change; beta's copy goes the same way, and its conflict
    # is resolved with it.
    wait_for(lambda: a.sql(opened, copy)[0][0] == 0, "alpha's conflict resolved")
    wait_for(lambda: a.run("consensus", AREA, "--peer", b.name, check=False).returncode == 0
             and b.sql(opened, copy)[0][0] == 0, "beta's conflict resolved", limit=120)  # fmt: skip
    assert tree(a.dir) == tree(b.dir)


def test_a_consensus_window_set_in_the_browser_starts_a_run_by_beat(household, tmp_path):
    """Real beat and worker: a window opening in the next minute starts a consensus with
    the peer, which takes a change made before it."""
    a, b = household("alpha", "beta")
    write(a.dir / "before.txt", b"before\n")
    a.consensus(b)
    opens = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
    with browser_page() as page:
        log_in(page, a.url, "admin", a.admin_password)
        page.goto(f"{a.url}/areas/{AREA}/")
        page.check("input[name=kind][value=span]")
        page.select_option("select[name=days]", "*")
        page.fill("input[name=start]", f"{opens:%H:%M}")
        page.fill("input[name=end]", f"{opens + datetime.timedelta(hours=1):%H:%M}")
        page.select_option("select[name=time_zone]", "UTC")
        page.click("button:text-is('Add window')")
        assert "within its windows" in page.locator(".messages").inner_text()
        assert f"{opens:%H:%M}" in page.locator("table.windows").inner_text()
        screenshots(page, "area-windows", tmp_path)
    write(a.dir / "waited.txt", b"made before the window\n")
    ran = "SELECT count(*) FROM areas_consensusrun WHERE trigger = 'window' AND status = 'done'"
    wait_for(lambda: a.sql(ran)[0][0] >= 1, "beat's run at the window's start", limit=180)
    wait_for(lambda: (b.dir / "waited.txt").exists(), "the change, taken by that run", limit=60)


def test_the_household_page_shows_each_peers_connection_live(household, tmp_path):
    """Connected since when and where, the bytes each way; a peer gone shows as gone
    without a reload (peerd tells open pages at each change, and every few seconds)."""
    a, b = household("alpha", "beta")
    write(a.dir / "some.bin", os.urandom(300_000))
    a.consensus(b)
    with browser_page() as page:
        log_in(page, a.url, "admin", a.admin_password)
        page.goto(f"{a.url}/peers/")
        page.evaluate("window.notReloaded = true")
        row = page.locator("tr[data-peer=beta]")
        wait_for(lambda: "connected since" in row.inner_text(), "beta shown connected")
        wait_for(lambda: "KB" in row.locator("[data-traffic]").inner_text(), "bytes each way")
        screenshots(page, "household-connected", tmp_path)
        b.stop()
        wait_for(lambda: "last seen" in row.inner_text(), "beta shown gone", limit=60)
        assert page.evaluate("window.notReloaded") is True
