"""A report that reads cleanly (issue 33, item 3): log axes ticked in plain numbers, no two alike
and none overlapping; no table cell reading NaN, None or nan; the setting column of a wide table
on one or two lines, the table scrolling sideways instead; one key-result sentence per model
where one machine is first to every target. Pages built from generated result sets (fast: no
training), the .test grid's report as the session built it, read in headless chromium."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from browser import HAS_CHROMIUM, offline_page
from conftest import REPO
from fake_results import make_result_set, report_parameters
from test_merge import derived_set

from mnistbench.report import build as report
from mnistbench.report import compare, merge, plots
from mnistbench.report.plots import machines as by_machine
from mnistbench.report.plots import time_to_accuracy
from mnistbench.report.plots.axes import log_axis

matplotlib.use("Agg")
BAD_CELLS = {"nan", "none", "<na>", "nat"}


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """A generated set of 24 settings with its report; a copy of it 2.5 times faster (its summary
    tables) compared with it and merged with it as `big-box`."""
    root = tmp_path_factory.mktemp("clean")
    results = make_result_set(root / "set", 24, repeats=2)
    report.build(
        str(REPO / "notebooks/report.ipynb"),
        str(results / "report.ipynb"),
        str(results / "report.html"),
        report_parameters(results),
    )
    faster = derived_set(results, root / "big-box", 0.4, "Big CPU", 64)
    compare.run(
        {"runs": faster / "summary/runs.csv", "machine": faster / "summary/machine.csv"},
        {"table": root / "compare/compare.csv", "html": root / "compare/compare.html"},
        results,
        threshold=1.1,
        confidence=0.95,
    )
    merged = root / "merged"
    outputs = {name: merged / f"{name}.csv" for name in ("runs", "settings", "machines")}
    merge.run({"workstation": str(results), "big-box": str(faster)}, None, 1.1, 0.95, outputs)
    report.build(
        str(REPO / "notebooks/merged.ipynb"),
        str(root / "merged.ipynb"),
        str(root / "merged.html"),
        {"merged_dir": str(merged)},
    )
    return {
        "report": results / "report.html",
        "compare": root / "compare/compare.html",
        "merged": root / "merged.html",
        "results": results,
        "merged_dir": merged,
    }


def log_tick_labels(figure) -> list[list[str]]:
    """Per log axis of `figure`, drawn, the labels of its major ticks within view."""
    figure.canvas.draw()
    found = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            low, high = sorted(axis.get_view_interval())
            ticks = [t for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
            labels = [t.label1.get_text() for t in ticks]
            boxes = [t.label1.get_window_extent() for t in ticks if t.label1.get_text()]
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), labels
            found.append(labels)
    plt.close(figure)
    return found


def assert_plain(axes_labels: list[list[str]]) -> None:
    for labels in axes_labels:
        assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
        for label in labels:
            assert re.fullmatch(r"\d+(\.\d+)?", label), labels  # 0.2, 5, 5000: no 2e-01
            float(label)


@pytest.mark.parametrize(
    "low, high", [(0.55, 0.65), (0.2, 0.7), (0.03, 0.045), (0.1, 50), (0.01, 5000), (3, 3.0001)]
)
@pytest.mark.parametrize("which", ["x", "y"])
def test_a_log_axis_reads_plain_distinct_numbers_over_any_range(low, high, which):
    figure, ax = plt.subplots(figsize=(4.2, 3))
    ax.plot(*([[low, high], [0, 1]] if which == "x" else [[0, 1], [low, high]]))
    log_axis(ax, which)
    assert_plain(log_tick_labels(figure))


def test_every_log_axis_of_the_report_and_the_merged_report_reads_plain_numbers(pages):
    summary = pages["results"] / "summary"
    runs, settings, history = (
        pd.read_csv(summary / f"{name}.csv") for name in ("runs", "settings", "history")
    )
    figures = [plots.dimension_figure(section)[0] for section in plots.dimension_sections(runs)]
    shown, _ = plots.bounded_settings(settings)
    figures += [plots.train_time_spread(runs, shown), plots.accuracy_vs_train_time(runs)[0]]
    figures += [time_to_accuracy.accuracy_vs_time(history, runs)]
    merged_settings, machines = by_machine.read_merged(pages["merged_dir"])
    figures.append(by_machine.machine_figure(merged_settings, list(machines["machine"]))[0])
    labels = [axis for figure in figures if figure is not None for axis in log_tick_labels(figure)]
    assert len(labels) >= 6
    assert_plain(labels)


# Every DataTable shows all its rows; then the text of every cell of every table of the page.
ALL_CELLS = """() => {
    for (const table of document.querySelectorAll('table.dataTable')) {
        $(table).DataTable().page.len(-1).draw();
    }
    return [...document.querySelectorAll('td')].map(cell => cell.innerText.trim());
}"""
# The setting cells of the runs table: their height in lines of text, and the scroll box around it.
SETTING_LINES = """() => {
    const table = document.getElementById('runs');
    const column = [...table.querySelectorAll('thead th')].findIndex(th => th.innerText.trim() === 'setting');
    const cells = [...table.querySelectorAll('tbody tr')].map(row => row.cells[column]);
    const lines = cells.map(cell => {  // the distinct tops of the text's line boxes
        const range = document.createRange();
        range.selectNodeContents(cell);
        return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
    });
    let box = table.parentElement;
    while (box && getComputedStyle(box).overflowX !== 'auto') box = box.parentElement;
    return {lines, scrolls: box ? box.scrollWidth > box.clientWidth : false, found: !!box};
}"""


def read_page(path: Path, width: int = 1300):
    with offline_page(path, width=width) as (page, _):
        if page.locator("table.dataTable").count():
            page.wait_for_selector("table.dataTable tbody tr", timeout=30_000)
        cells = page.evaluate(ALL_CELLS)
        setting = page.evaluate(SETTING_LINES) if page.locator("#runs").count() else None
        key_results = page.eval_on_selector_all("li", "els => els.map(e => e.innerText)")
    return cells, setting, key_results


def assert_no_missing_words(cells: list[str]) -> None:
    bad = [cell for cell in cells if cell.lower() in BAD_CELLS or re.search(r"\bNaN\b", cell)]
    assert not bad, bad[:10]


@pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")
@pytest.mark.parametrize("name", ["report", "compare", "merged"])
def test_no_table_cell_reads_nan_or_none(pages, name):
    cells, _, _ = read_page(pages[name])
    assert len(cells) > 50
    assert_no_missing_words(cells)


@pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")
def test_all_runs_keeps_each_setting_on_one_or_two_lines_and_scrolls_sideways(pages):
    _, setting, _ = read_page(pages["report"], width=800)  # a narrow window: the table is wider
    assert setting["found"] and setting["scrolls"]
    assert len(setting["lines"]) >= 48 and max(setting["lines"]) <= 2, setting["lines"]


@pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")
def test_the_merged_key_results_say_one_sentence_per_model_when_one_machine_wins_every_target(pages):
    _, _, items = read_page(pages["merged"])
    fastest = [item for item in items if item.startswith("Fastest machine")]
    assert len(fastest) == 3, fastest  # softmax, mlp and cnn
    for line in fastest:  # one machine, one figure: never a clause per target
        assert line.count("big-box") == 1 and line.count("x faster") == 1, line
    every = [line for line in fastest if "to every target" in line]
    assert every, fastest  # a model that reached several targets
    for line in every:
        assert re.search(r": 2\.50x faster than workstation \[\d\.\d\d-\d\.\d\d\]", line), line


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")
def test_the_dot_test_report_reads_cleanly(dot_test_run):
    cells, setting, _ = read_page(dot_test_run[0] / "results/report.html", width=800)
    assert_no_missing_words(cells)
    assert setting["found"] and max(setting["lines"]) <= 2, setting
