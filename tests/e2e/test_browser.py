"""The appliance as a person meets it: a real browser against `realize up`."""

import json
import os
import signal
import urllib.error
import urllib.request

import psycopg
import pytest

from peers.identity import peer_id
from realize_site.lib import PEERD_SOCKET
from tests.appliance import database_url, wait_for
from tests.browser import browser_page, log_in, screenshots


@pytest.fixture
def alpha(appliances):
    return appliances("alpha", listen="127.0.0.1:7001").up()


def test_login_dashboard_and_live_household(alpha, tmp_path):
    with browser_page() as page:
        page.goto(alpha.url + "/peers/")
        assert "/login/" in page.url

        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit]")
        assert page.locator(".error").is_visible()

        log_in(page, alpha.url, "admin", alpha.admin_password)
        assert page.locator("[data-field=name]").inner_text() == "alpha"
        assert page.locator("[data-field=peer_id]").inner_text() == alpha.peer_id
        assert page.locator("[data-field=listen_address]").inner_text() == "127.0.0.1:7001"
        page.wait_for_selector("#live-state.live")

        # A peer added on the command line appears without a reload.
        page.evaluate("window.notReloaded = true")
        beta = peer_id.encode(os.urandom(32))
        alpha.run("peer", "add", "beta", beta, "--address", "127.0.0.1:7002")
        row = page.wait_for_selector("tr[data-peer=beta]")
        assert beta in row.inner_text() and "127.0.0.1:7002" in row.inner_text()
        alpha.run("peer", "remove", "beta")
        page.wait_for_selector("tr[data-peer=beta]", state="detached")
        assert page.evaluate("window.notReloaded") is True
        screenshots(page, "dashboard", tmp_path)


def test_manage_the_household_in_the_browser(alpha, tmp_path):
    with browser_page() as page:
        log_in(page, alpha.url, "admin", alpha.admin_password)
        page.click("text=Household")
        page.wait_for_selector("#live-state.live")

        page.fill("input[name=name]", "beta")
        page.fill("input[name=peer_id]", "AAAAAAA-BBBBBBB")
        page.click("text=Add peer")
        assert "bad peer id" in page.locator("[role=alert]").inner_text()
        assert page.locator("tr[data-peer]").count() == 0

        gamma = peer_id.encode(os.urandom(32))
        page.fill("input[name=name]", "gamma")
        page.fill("input[name=peer_id]", gamma)
        page.fill("input[name=address]", "")
        page.click("text=Add peer")
        assert "Added peer gamma" in page.locator(".messages").inner_text()
        assert "deaf" in page.locator("tr[data-peer=gamma]").inner_text()
        assert "gamma" in alpha.run("peer", "list").stdout
        screenshots(page, "household", tmp_path)

        # Added elsewhere, managed here without a reload: the live row links to its page,
        # where it is edited, paused, resumed and removed.
        alpha.run("peer", "add", "delta", peer_id.encode(os.urandom(32)))
        page.click("tr[data-peer=delta] >> text=delta")
        page.fill("input[name=address]", "not an address")
        page.click("text=Save")
        assert "bad address" in page.locator("[role=alert]").inner_text()
        page.fill("input[name=name]", "epsilon")
        page.fill("input[name=address]", "127.0.0.1:7009")
        page.click("text=Save")
        page.wait_for_selector("text=Saved peer epsilon")
        assert "127.0.0.1:7009" in page.locator("tr[data-peer=epsilon]").inner_text()
        page.click("text=Pause syncing")
        page.wait_for_selector("text=Paused peer epsilon")
        assert "paused" in page.locator("tr[data-peer=epsilon] [data-conn]").inner_text()
        assert "(paused)" in alpha.run("peer", "list").stdout
        screenshots(page, "peer", tmp_path)
        page.click("text=Resume syncing")
        page.wait_for_selector("text=Resumed peer epsilon")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("text=Remove from the household")
        page.wait_for_selector("text=Removed peer epsilon")
        assert "epsilon" not in alpha.run("peer", "list").stdout

        page.click("text=Log out")
        page.goto(alpha.url + "/")
        assert "/login/" in page.url


def test_add_an_area_in_the_browser(alpha, tmp_path):
    with browser_page() as page:
        log_in(page, alpha.url, "admin", alpha.admin_password)
        runs = page.locator("table[data-live=runs]")
        assert "No consensus runs yet" in runs.inner_text()

        page.locator("nav").get_by_role("link", name="Areas", exact=True).click()
        page.fill("input[name=name]", "docs")
        page.fill("input[name=path]", str(tmp_path / "missing"))
        page.click("text=Add area")
        assert "does not exist" in page.locator("[role=alert]").inner_text()
        assert page.locator("tr[data-area]").count() == 0

        (tmp_path / "docs" / "photos" / "2024").mkdir(parents=True)
        for name, size in [("notes.txt", 1500), ("photos/cover.jpg", 90_000),
                           ("photos/2024/beach.jpg", 2_500_000)]:  # fmt: skip
            (tmp_path / "docs" / name).write_bytes(os.urandom(size))
        page.fill("input[name=path]", str(tmp_path / "docs"))
        page.click("text=Add area")
        assert "Added area docs" in page.locator(".messages").inner_text()
        assert str(tmp_path / "docs") in page.locator("tr[data-area=docs]").inner_text()
        assert "docs" in alpha.run("area", "list").stdout
        screenshots(page, "areas", tmp_path)

        # No peer yet: the button says so instead of failing.
        wait_for(lambda: (alpha.home / PEERD_SOCKET).exists(), "the peer daemon's socket")
        page.click("tr[data-area=docs] >> text=Run consensus now")
        assert "No connected peer shares area docs" in page.locator(".messages").inner_text()

        # Its page: the rest period changed (a bad value refused), paused, resumed, removed.
        page.click("tr[data-area=docs] >> a:text-is('docs')")
        page.fill("input[name=rest_seconds]", "-3")
        page.click("text=Save")  # the browser itself refuses it (the server would too)
        assert not page.locator("input[name=rest_seconds]").evaluate("e => e.validity.valid")
        page.fill("input[name=rest_seconds]", "90")
        page.click("text=Save")
        assert "90 s after a change" in page.locator(".messages").inner_text()
        page.click("text=Pause syncing")
        assert "Paused" in page.locator("[data-area-state=docs]").inner_text()
        screenshots(page, "area", tmp_path)
        assert "paused" in alpha.run("area", "list").stdout
        page.click("text=Resume syncing")
        assert "Resumed area docs" in page.locator(".messages").inner_text()

        # Its files, once indexed: a directory at a time, with a breadcrumb back.
        page.click("text=Browse the files")
        wait_for(
            lambda: page.reload() and page.locator("tr[data-file='notes.txt']").count(),
            "the area's files indexed",
        )
        assert "real" in page.locator("tr[data-file='notes.txt']").inner_text()
        assert "2 files" in page.locator("tr[data-directory=photos]").inner_text()
        screenshots(page, "files", tmp_path)
        page.click("tr[data-directory=photos] >> a")
        page.click("tr[data-directory='2024'] >> a")
        assert "beach.jpg" in page.locator("table.files").inner_text()
        page.locator("nav.breadcrumb").get_by_role("link", name="docs").click()
        page.wait_for_selector("tr[data-file='notes.txt']")
        page.click("text=area page")
        page.click("text=Remove this area")
        screenshots(page, "area-remove", tmp_path)
        page.click("button:has-text('Remove area docs')")
        assert "Removed area docs" in page.locator(".messages").inner_text()
        assert page.locator("tr[data-area]").count() == 0
        assert (tmp_path / "docs").is_dir()


def test_a_page_catches_up_after_its_live_channel_drops(alpha, tmp_path):
    """Events sent while a page's websocket is down are lost: the page, once reconnected,
    fetches its state again (here: an area added meanwhile shows without a reload)."""
    with browser_page() as page:
        log_in(page, alpha.url, "admin", alpha.admin_password)
        page.goto(alpha.url + "/areas/")
        page.wait_for_selector("#live-state.live")
        page.evaluate("window.notReloaded = true")
        web = alpha.up_state()["programs"]["web"]["pid"]
        os.kill(web, signal.SIGKILL)  # `up` starts it again
        page.wait_for_selector("#live-state:not(.live)")
        # Added behind the page's back, with no event at all: only a fetch shows it.
        with psycopg.connect(database_url(alpha.database), autocommit=True) as db:
            db.execute(
                "INSERT INTO areas_area (name, path, mode, rest_seconds, history_seq, paused,"
                " created_at) VALUES ('later', %s, 'real', 30, 0, false, now())",
                [str(tmp_path / "later")],
            )
        page.wait_for_selector("#live-state.live", timeout=60_000)
        page.wait_for_selector("tr[data-area=later]")
        assert page.evaluate("window.notReloaded") is True


def test_how_soon_an_event_reaches_an_open_page(alpha, capsys):
    """A figure, not an assertion: from a peer's row being written (`peer add`) to the open
    page's script receiving the event. The browser and the database share this clock."""
    delays = []
    with browser_page() as page:
        log_in(page, alpha.url, "admin", alpha.admin_password)
        page.goto(alpha.url + "/peers/")
        page.wait_for_selector("#live-state.live")
        page.evaluate(
            "window.arrivals = {};"
            "document.addEventListener('realize:event', (e) => {"
            "  for (const p of (e.detail.peers || [])) window.arrivals[p.name] ??="
            "    performance.timeOrigin + performance.now(); })"
        )
        for n in range(5):
            name = f"p{n}"
            alpha.run("peer", "add", name, peer_id.encode(os.urandom(32)))
            page.wait_for_selector(f"tr[data-peer={name}]")
            arrived = page.evaluate(f"window.arrivals['{name}']")
            with psycopg.connect(database_url(alpha.database)) as db:
                (written,) = db.execute(
                    "SELECT extract(epoch FROM added_at) * 1000 FROM peers_peer WHERE name = %s",
                    [name],
                ).fetchone()
            delays.append(arrived - float(written))
    with capsys.disabled():
        print(f"\nlive event, row written -> page: {', '.join(f'{d:.0f}' for d in delays)} ms")
    assert all(d > 0 for d in delays)  # measured after the write, on one clock


def test_a_token_made_in_the_browser_works_for_a_script(alpha, tmp_path):
    with browser_page() as page:
        log_in(page, alpha.url, "admin", alpha.admin_password)
        page.locator("nav").get_by_role("link", name="API", exact=True).click()
        page.fill("input[name=name]", "backup script")
        page.click("button:text-is('Make token')")
        token = page.locator("[data-token]").inner_text()
        screenshots(page, "api-tokens", tmp_path)
        page.goto(alpha.url + "/api/v1/docs")  # the OpenAPI page, served here (no CDN)
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("status" in p for p in paths) and "consensus.run" in page.content()
    asked = urllib.request.Request(
        alpha.url + "/api/v1/status", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(asked, timeout=30) as answer:
        state = json.load(answer)
    assert state["local"]["name"] == "alpha"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(alpha.url + "/api/v1/status", timeout=30)
    assert refused.value.code == 401
