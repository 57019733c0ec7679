"""A page opened offline in a real headless browser (Debian's chromium, through playwright):
every request that leaves the file is refused and recorded, so a test can assert that the page
needs nothing from outside."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAS_CHROMIUM = Path(CHROMIUM).exists()


@contextlib.contextmanager
def offline_page(path: Path, width: int = 1300, height: int = 900):
    """Yields (page, outside): the page at `path`, loaded, and the list of the outside addresses
    it asked for (each refused)."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": width, "height": height})

        def only_local(route):
            if route.request.url.startswith(("file:", "data:")):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_local)
        page.goto(path.as_uri(), wait_until="load")
        try:
            yield page, outside
        finally:
            browser.close()
