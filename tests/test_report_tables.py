"""The report's building blocks that need no kernel: interactive tables and clean notebooks."""

import warnings

import nbformat
import pandas as pd
import pytest
from conftest import REPO

from mnistbench.report import tables as report_tables


def test_interactive_table_keeps_every_row_and_its_id():
    frame = pd.DataFrame({"run": [f"r{i}" for i in range(1000)], "accuracy": [i / 1000 for i in range(1000)]})
    html = report_tables.to_html(frame, "runs")
    assert 'id="runs"' in html
    # itables would downsample a table this size by default: every run must stay searchable.
    assert "r0" in html and "r500" in html and "r999" in html
    assert "cdn" not in html.lower().replace("cdn_", "")  # offline: nothing loaded from a CDN


@pytest.mark.parametrize("name", ["report.ipynb", "lesson.ipynb"])
def test_notebooks_have_cell_ids_so_the_log_stays_clean(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MissingIDFieldWarning would be raised here
        notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nbformat.validate(notebook)
    assert all(cell.get("id") for cell in notebook.cells)
