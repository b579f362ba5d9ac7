"""The activity charts from real appliances: a pull's bytes are sampled by the processes that
moved them (beta's worker over its data link, alpha's peerd serving it), and the page and the
API show them."""

import json
import os
import subprocess
import urllib.request

import pytest

from tests.appliance import wait_for
from tests.browser import browser_page, log_in, screenshots
from tests.household import AREA, make_household

MiB = 1024 * 1024


@pytest.fixture
def pair(tmp_path):
    alpha, beta = make_household(tmp_path, ["alpha", "beta"])
    yield alpha, beta
    for member in (alpha, beta):
        member.destroy()


def _moved(member, peer: str) -> tuple[int, int]:
    """Bytes sent to and received from `peer`, in all of the member's samples."""
    [(sent, received)] = member.sql(
        "SELECT coalesce(sum(sent), 0), coalesce(sum(received), 0)"
        " FROM realize_site_trafficsample WHERE peer = %s",
        peer,
    )
    return int(sent), int(received)


def test_a_pull_shows_in_both_peers_throughput(pair, tmp_path):
    alpha, beta = pair
    (alpha.dir / "big.bin").write_bytes(os.urandom(8 * MiB))
    beta.consensus(alpha)
    # Samples are written at the turn of each minute.
    wait_for(lambda: _moved(beta, "alpha")[1] > 8 * MiB, "beta's samples of the pull", 90)
    wait_for(lambda: _moved(alpha, "beta")[0] > 8 * MiB, "alpha's samples of the pull", 90)

    with browser_page() as page:
        log_in(page, beta.url, "admin", beta.admin_password)
        page.locator("nav").get_by_role("link", name="Activity", exact=True).click()
        row = page.locator("tr[data-peer=alpha]")
        assert "MB" in row.inner_text()
        assert page.locator("#chart-throughput polyline.received").count() >= 1
        label = page.locator("#chart-throughput [role=img]").get_attribute("aria-label")
        assert label.startswith("Over the last hour: received ")
        screenshots(page, "activity", tmp_path)
        page.get_by_role("link", name="Last week").click()
        page.wait_for_url("**span=week")
        assert "alpha" in page.locator("table.activity-peers").inner_text()
        screenshots(page, "activity-week", tmp_path)
        token_page = page.goto(beta.url + "/api/tokens/")
        assert token_page.ok
        page.fill("input[name=name]", "charts")
        page.click("button:text-is('Make token')")
        token = page.locator("[data-token]").inner_text()

    asked = urllib.request.Request(
        beta.url + "/api/v1/activity?span=day", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(asked, timeout=30) as answer:
        day = json.load(answer)
    [from_alpha] = [p for p in day["peers"] if p["peer"] == "alpha"]
    assert from_alpha["received"] > 8 * MiB and len(from_alpha["points"]) == 96


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="this machine cannot mount")
def test_reads_through_the_mount_show_as_cache_use_and_traffic(tmp_path):
    alpha, beta = make_household(tmp_path, ["alpha", "beta"], unreal={"beta"})
    where = tmp_path / "mnt-beta"
    where.mkdir()
    try:
        beta.stop()
        beta.up("--mount", str(where))
        wait_for(lambda: os.path.ismount(where) and os.listdir(where), "beta's mount")
        content = os.urandom(6 * MiB)
        (alpha.dir / "big.bin").write_bytes(content)
        beta.consensus(alpha)
        wait_for(lambda: (where / AREA / "big.bin").exists(), "the file in the mount")
        assert (where / AREA / "big.bin").read_bytes() == content  # fetched into the cache

        def held() -> int:
            rows = beta.sql("SELECT held FROM realize_site_cachesample ORDER BY at DESC LIMIT 1")
            return rows[0][0] if rows else 0

        wait_for(lambda: held() >= 6 * MiB, "a sample of the cache holding the file", 90)
        # The mount read it over a data link of its own: its sampler counts that.
        wait_for(lambda: _moved(beta, "alpha")[1] > 6 * MiB, "the mount's traffic", 90)

        with browser_page() as page:
            log_in(page, beta.url, "admin", beta.admin_password)
            page.goto(beta.url + "/activity/")
            assert page.locator("#chart-cache polyline.held").count() >= 1
            label = page.locator("#chart-cache [role=img]").get_attribute("aria-label")
            assert label.startswith("The cache holds 6.0\xa0MB of its ")
            screenshots(page, "activity-cache", tmp_path)
    finally:
        for member in (alpha, beta):
            member.destroy()
        subprocess.run(["fusermount3", "-uz", str(where)], capture_output=True)
