"""A real headless browser: Debian's Chromium driven by Playwright (never a downloaded one)."""

import contextlib
import os
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's servers, which this machine refuses.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def log_in(page, url: str, username: str, password: str) -> None:
    page.goto(url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


# Screenshots go here when set (to look at them), else into the test's own directory.
SCREENSHOTS = os.environ.get("REALIZE_SCREENSHOTS")


def screenshots(page, name: str, into: Path) -> None:
    """The page as it is now, whole, at a desktop's width and at a phone's (390 px)."""
    where = Path(SCREENSHOTS) if SCREENSHOTS else into
    where.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(where / f"{name}-{width}.png"), full_page=True)
    if size:
        page.set_viewport_size(size)
