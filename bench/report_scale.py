"""How the report scales with the grid: build time, page size, images and their height, for a
generated result set (tests/fake_results.py: no training, the real aggregation) of each size.

    .venv/bin/python bench/report_scale.py [--settings 120 1000] [--repeats 2] [--keep DIR]

Per size: generates the set in a temporary folder, builds results/report.html from
notebooks/report.ipynb as rule report does (papermill, then nbconvert), and measures the page;
with Debian's chromium (and Playwright) also the page's height at 1400 px wide. Generating 1000
settings takes minutes, most of it in mnistbench.results.summary.aggregate. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the generator lives beside the tests that use it

from fake_results import make_result_set, report_parameters  # noqa: E402

from mnistbench.report import build as report  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH = 1400
# nbconvert embeds each figure as <img src="data:image/png;base64,...">.
PNG = re.compile(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"')


def png_sizes(html: str) -> list[tuple[int, int]]:
    """(width, height) in px of every embedded PNG, read from its header (IHDR: bytes 16-24)."""
    sizes = []
    for match in PNG.finditer(html):
        header = base64.b64decode(re.sub(r"\s", "", match.group(1)[:64])[:32])
        sizes.append(struct.unpack(">II", header[16:24]))
    return sizes


def page_height(html_path: Path) -> int | None:
    """The page's height in px at WIDTH px wide, in headless chromium; None without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.goto(html_path.as_uri(), wait_until="load")
        height = page.evaluate("document.documentElement.scrollHeight")
        browser.close()
    return int(height)


def measure(n_settings: int, repeats: int, folder: Path) -> dict:
    start = time.perf_counter()
    results = make_result_set(folder, n_settings, repeats)
    generated = time.perf_counter() - start
    html_path = results / "report.html"
    start = time.perf_counter()
    report.build(
        template=str(REPO / "notebooks/report.ipynb"),
        notebook_out=str(results / "report.ipynb"),
        html_out=str(html_path),
        parameters=report_parameters(results),
    )
    built = time.perf_counter() - start
    html = html_path.read_text()
    sizes = png_sizes(html)
    runs = sum(1 for _ in (results / "runs").iterdir())
    row = {
        "settings": n_settings,
        "runs": runs,
        "generate s": f"{generated:.0f}",
        "build s": f"{built:.1f}",
        "HTML MB": f"{len(html.encode()) / 1e6:.1f}",
        "<img": html.count("<img"),
        "tallest figure px": max((height for _, height in sizes), default=0),
        f"page px at {WIDTH} wide": page_height(html_path) or "-",
    }
    print(f"  {n_settings} settings: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, nargs="+", default=[120, 1000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the sets here and keep them (default: temporary)")
    args = parser.parse_args()
    rows = []
    for n_settings in args.settings:
        if args.keep:
            rows.append(measure(n_settings, args.repeats, args.keep / f"settings-{n_settings}"))
            continue
        with tempfile.TemporaryDirectory(prefix="report-scale-") as folder:
            rows.append(measure(n_settings, args.repeats, Path(folder)))
    print("\n| " + " | ".join(rows[0]) + " |\n|" + " --- |" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(map(str, row.values())) + " |")


if __name__ == "__main__":
    main()
