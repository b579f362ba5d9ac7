"""A peer paused, or an area kept from a peer, syncs nothing with it until undone; what
changed meanwhile then goes across."""

import pytest

from tests.appliance import wait_for
from tests.browser import browser_page, log_in, screenshots
from tests.household import make_household


@pytest.fixture
def pair(tmp_path):
    members = make_household(tmp_path, ["alpha", "beta"])
    yield members
    for member in members:
        member.destroy()


def _peerd_log(member) -> str:
    return (member.home / "logs" / "peerd.log").read_text(errors="replace")


def test_a_paused_peer_is_neither_dialled_nor_answered_until_resumed(pair):
    a, b = pair
    (a.dir / "before.txt").write_text("before")
    a.consensus(b)
    assert (b.dir / "before.txt").read_text() == "before"

    assert "Paused peer beta" in a.run("peer", "pause", "beta").stdout
    assert "(paused)" in a.run("peer", "list").stdout
    wait_for(lambda: "beta is paused: disconnecting" in _peerd_log(a), "alpha drops beta")
    # beta keeps dialling alpha, which refuses it after the handshake, as it is a member.
    wait_for(lambda: "beta is paused here" in _peerd_log(a), "alpha refuses beta")
    refused = a.run("consensus", "docs", "--peer", "beta", check=False)
    assert refused.returncode != 0 and "peer beta is paused" in refused.stderr
    assert "refused unknown peer" not in _peerd_log(a)  # still a member, not a stranger

    (a.dir / "meanwhile.txt").write_text("meanwhile")
    assert "Resumed peer beta" in a.run("peer", "resume", "beta").stdout
    a.consensus(b)
    assert (b.dir / "meanwhile.txt").read_text() == "meanwhile"


def test_an_area_kept_from_a_peer_is_not_synced_with_it(pair):
    a, b = pair
    out = a.run("area", "edit", "docs", "--unshare", "beta").stdout
    assert "shared with: no peer" in out
    (a.dir / "kept.txt").write_text("kept")
    (b.dir / "theirs.txt").write_text("theirs")
    refused = a.run("consensus", "docs", "--peer", "beta", check=False)
    assert refused.returncode != 0 and "not shared with beta" in refused.stderr
    # beta still shares it, and asks: alpha refuses.
    refused = b.run("consensus", "docs", "--peer", "alpha", check=False)
    assert refused.returncode != 0 and "not shared with beta" in refused.stderr
    assert not (b.dir / "kept.txt").exists() and not (a.dir / "theirs.txt").exists()

    bad = a.run("area", "edit", "docs", "--unshare", "nobody", check=False)
    assert bad.returncode != 0 and "no peer named 'nobody'" in bad.stderr

    assert "shared with: beta" in a.run("area", "edit", "docs", "--share", "beta").stdout
    a.consensus(b)
    assert (b.dir / "kept.txt").read_text() == "kept"
    assert (a.dir / "theirs.txt").read_text() == "theirs"


def test_the_area_page_lists_what_is_still_to_take_and_runs_record_progress(pair, tmp_path):
    a, b = pair
    b.run("area", "edit", "docs", "--rest", "3600")  # beta's changes wait there
    (b.dir / "one.bin").write_bytes(b"1" * 300_000)
    (b.dir / "sub").mkdir()
    (b.dir / "sub" / "two.txt").write_text("two")
    with browser_page() as page:
        log_in(page, a.url, "admin", a.admin_password)

        def listed() -> bool:
            page.goto(f"{a.url}/areas/docs/")
            return "From beta: 2 items" in page.locator("body").inner_text()

        wait_for(listed, "alpha's page lists what beta has for it")
        needed = page.locator("#needed").inner_text()
        assert "one.bin" in needed and "sub/two.txt" in needed and "293.0\xa0KB" in needed
        assert "Up to date" in page.locator("[data-area-state=docs]").inner_text()
        screenshots(page, "area-needed", tmp_path)

        a.consensus(b)
        page.goto(f"{a.url}/areas/docs/")
        assert page.locator("#needed").count() == 0
        changes = page.locator("table[data-live=changes]").inner_text()
        assert "sub/two.txt" in changes and "beta" in changes
        # A change made here later shows in the feed without a reload.
        page.evaluate("window.notReloaded = true")
        (a.dir / "mine.txt").write_text("mine")
        page.wait_for_selector("table[data-live=changes] >> text=mine.txt", timeout=60_000)
        assert "alpha (this peer)" in page.locator("table[data-live=changes]").inner_text()
        assert page.evaluate("window.notReloaded") is True
    # The pull knew what it had to take, and recorded it on its run as it went.
    assert a.sql(
        "SELECT files_in, files_total, bytes_total FROM areas_consensusrun"
        " WHERE status = 'done' ORDER BY id DESC LIMIT 1"
    ) == [(2, 2, 300_003)]
