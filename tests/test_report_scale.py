"""The report at 1000 settings, from a generated result set (no training; the real aggregation):
it builds, and stays within the limits docs/report.md states."""

import base64
import re
import struct

import pytest
from conftest import REPO
from fake_results import make_result_set, report_parameters

from mnistbench.report import build as report
from mnistbench.report.plots.key_results import MOST_NAMED

# The limits in docs/report.md: figures at most about two screens tall, a bounded number of
# them whatever the number of settings, a page of a few MB.
MOST_FIGURE_PX = 1800
MOST_FIGURES = 25
MOST_MB = 10
PNG = re.compile(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]{64})')


def figure_heights(html: str) -> list[int]:
    """The height in px of every embedded PNG, from its header (IHDR: bytes 16-24)."""
    headers = (base64.b64decode(re.sub(r"\s", "", match)[:32]) for match in PNG.findall(html))
    return [struct.unpack(">II", header[16:24])[1] for header in headers]


@pytest.mark.slow
def test_a_thousand_settings_build_a_report_within_the_stated_limits(tmp_path):
    results = make_result_set(tmp_path, 1000, repeats=2)
    html_path = results / "report.html"
    report.build(
        str(REPO / "notebooks/report.ipynb"),
        str(results / "report.ipynb"),
        str(html_path),
        report_parameters(results),
    )
    html = html_path.read_text()
    heights = figure_heights(html)
    assert 5 <= len(heights) <= MOST_FIGURES and max(heights) <= MOST_FIGURE_PX
    assert html_path.stat().st_size <= MOST_MB * 2**20
    # Every run and setting is in the interactive tables (the figures show a bounded set).
    assert 'id="runs"' in html and 'id="settings"' in html
    assert html.count("_r2") >= 1000  # every second repeat is listed by name
    key_results = html[html.index('id="Key-results"') : html.index('id="What-ran"')]
    assert key_results.count("<li>") <= 30 and key_results.count("Not to be trusted") <= MOST_NAMED + 1
