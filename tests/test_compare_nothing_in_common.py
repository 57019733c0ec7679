"""compare when no setting finished in both sets: a baseline whose runs all failed, this set with
no ok run, two grids that share no setting. The page lists what each side has and says there is
nothing to compare; compare.csv keeps its columns."""

import pandas as pd
import pytest
from test_compare import MACHINE, TIMES, runs_table, write_baseline

from mnistbench.report import compare


def failed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.assign(status="failed", time_train=float("nan"), test_accuracy=float("nan"))


def compare_files(tmp_path, ours: pd.DataFrame, theirs: pd.DataFrame):
    """compare.run on real files; returns compare.csv as read back and the page's text."""
    mine = write_baseline(tmp_path / "ours", ours, MACHINE.assign(host="workstation")) / "summary"
    baseline = write_baseline(tmp_path / "baseline", theirs)
    outputs = {"table": tmp_path / "out/compare.csv", "html": tmp_path / "out/compare.html"}
    inputs = {"runs": mine / "runs.csv", "machine": mine / "machine.csv"}
    compare.run(inputs, outputs, baseline, threshold=1.1, confidence=0.95)
    return pd.read_csv(outputs["table"]), outputs["html"].read_text()


@pytest.mark.parametrize(
    ("ours", "theirs", "verdicts", "said"),
    [
        (runs_table(TIMES), failed(runs_table(TIMES)), ["only in this set"] * 3, "the baseline: 0 of 9 runs"),
        (failed(runs_table(TIMES)), runs_table(TIMES), ["only in the baseline"] * 3, "This set: 0 of 9 runs"),
        (
            runs_table(TIMES),
            runs_table(TIMES).assign(seed=1),  # a baseline with another seed
            ["only in this set"] * 3 + ["only in the baseline"] * 3,
            "This set: 9 of 9 runs ended ok; the baseline: 9 of 9 runs ended ok",
        ),
    ],
    ids=["baseline-all-failed", "this-set-none-ok", "no-shared-setting"],
)
def test_no_setting_finished_on_both_sides_builds_a_page_that_says_so(tmp_path, ours, theirs, verdicts, said):
    table, page = compare_files(tmp_path, ours, theirs)
    assert sorted(table["verdict"]) == sorted(verdicts)  # no geometric mean of nothing
    assert list(table.columns) == compare.table_columns()
    assert "Nothing to compare" in page and said in page
    assert "failed" in page if "0 of 9" in said else "failed" not in page
    assert "data:image/png" not in page and "no setting to compare" in page


def test_two_sets_without_a_finished_run_give_an_empty_table_with_its_columns(tmp_path):
    table, page = compare_files(tmp_path, failed(runs_table(TIMES)), failed(runs_table({"8": [1.0]})))
    assert table.empty and list(table.columns) == compare.table_columns()
    assert "Nothing to compare" in page and "0 of 1 runs ended ok (1 failed)" in page


def test_a_page_with_settings_to_compare_does_not_say_there_is_nothing():
    table = compare.compare(runs_table(TIMES), runs_table({"4": [5.0, 5.1], "8": [2.0, 2.1]}))
    assert list(table.columns) == compare.table_columns()
    assert compare._nothing_to_compare(table, runs_table(TIMES), runs_table(TIMES)) == ""
