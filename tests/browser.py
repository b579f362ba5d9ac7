"""A real headless browser: Debian's Chromium driven by Playwright (never a downloaded one)."""

import contextlib

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
