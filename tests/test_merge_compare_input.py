"""Merge and compare on awkward input (issue 31): a set given twice, a merged folder given as a
set, sets named by numbers, sets with no finished run, settings with one repeat, a baseline made
before the hardware settings. Each is refused in one line naming the culprit, or read into a page
that says what is missing; never a traceback or a wrong verdict."""

import pandas as pd
import pytest
from conftest import REPO
from test_compare import TIMES, runs_table, write_baseline
from test_merge import FACTS, three_sets

from mnistbench.report import build as report
from mnistbench.report import compare, merge
from mnistbench.report.plots import machines as by_machine
from mnistbench.results.result_sets import ResultSetError

OUTPUTS = ("runs", "settings", "machines")


def merged_page(tmp_path, sets: dict, reference=None) -> tuple[dict, str]:
    """merge.run into tmp_path/merged, then the merged page built from its tables: (tables, page)."""
    outputs = {name: tmp_path / f"merged/{name}.csv" for name in OUTPUTS}
    tables = merge.run(sets, reference, 1.1, 0.95, outputs)
    page = tmp_path / "merged.html"
    notebook = str(REPO / "notebooks/merged.ipynb")
    report.build(
        notebook, str(tmp_path / "merged.ipynb"), str(page), {"merged_dir": str(tmp_path / "merged")}
    )
    return tables, page.read_text()


def failed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.assign(status="failed", time_train=float("nan"), test_accuracy=float("nan"))


@pytest.mark.parametrize("alias", ["same path", "link", "its summary"])
def test_the_same_set_under_two_names_is_refused_in_one_line(tmp_path, alias):
    sets = three_sets(tmp_path)
    laptop = sets["laptop"]
    again = {"same path": laptop, "link": str(tmp_path / "lap-link"), "its summary": f"{laptop}/summary"}[
        alias
    ]
    if alias == "link":
        (tmp_path / "lap-link").symlink_to(laptop)
    sets["old-laptop"] = again
    expected = (
        f"config key 'merge.sets.old-laptop': {again} is the same result set as merge.sets.laptop "
        f"({laptop}); name each set once"
    )
    with pytest.raises(ResultSetError) as raised:
        merge.check_sets({"sets": sets, "reference": None})
    assert str(raised.value) == expected
    with pytest.raises(ResultSetError, match="is the same result set as merge.sets.laptop"):
        merge.merge(sets, None, 1.1, 0.95)


def test_a_baseline_that_is_this_set_itself_is_refused(tmp_path):
    ours = write_baseline(tmp_path / "results")
    (tmp_path / "linked").symlink_to(ours)
    for baseline in (ours, ours / "summary", tmp_path / "linked"):
        with pytest.raises(compare.BaselineError) as raised:
            compare.check_baseline(baseline, ours=ours / "summary/runs.csv")
        assert str(raised.value) == (
            f"config key 'compare.baseline': {baseline} is this result set itself "
            f"({ours / 'summary/runs.csv'}); a baseline must be another set"
        )
    outputs = {"table": tmp_path / "out/compare.csv", "html": tmp_path / "out/compare.html"}
    inputs = {"runs": ours / "summary/runs.csv", "machine": ours / "summary/machine.csv"}
    with pytest.raises(compare.BaselineError, match="is this result set itself"):
        compare.run(inputs, outputs, tmp_path / "linked", threshold=1.1, confidence=0.95)
    assert not outputs["html"].exists()


def test_a_baseline_made_before_the_hardware_settings_is_compared_at_their_defaults(tmp_path):
    """Its runs used 1 thread on the cpu in float32: matched with this set's, said once on the page."""
    hardware = ["threads", "device", "precision", "jit_compile", "partition", "target_accuracy"]
    baseline = write_baseline(tmp_path / "old", runs_table(TIMES, factor=3.0).drop(columns=hardware))
    ours = write_baseline(tmp_path / "ours") / "summary"
    outputs = {"table": tmp_path / "out/compare.csv", "html": tmp_path / "out/compare.html"}
    inputs = {"runs": ours / "runs.csv", "machine": ours / "machine.csv"}
    compare.run(inputs, outputs, baseline, threshold=1.1, confidence=0.95)
    table = pd.read_csv(outputs["table"])
    assert list(table["verdict"]) == ["faster"] * 3 + ["geometric mean"]
    page = outputs["html"].read_text()
    assert page.count("made by an older version") == 1
    assert "threads 1, device cpu, precision float32, jit_compile auto, partition none" in page


def test_a_merged_folder_given_as_a_set_or_a_baseline_is_refused_by_name(tmp_path):
    """The finding: as a set it crashed (`cannot insert machine, already exists`); as a baseline,
    every machine's runs were pooled into one side."""
    outputs = {name: tmp_path / f"results/summary/merged/{name}.csv" for name in OUTPUTS}
    merge.run(three_sets(tmp_path), None, 1.1, 0.95, outputs)
    merged = tmp_path / "results/summary/merged"
    machines = "3 machines (workstation, gpu-node, laptop)"
    said = f"{merged} is a merged result set of {machines}; name its sets instead"
    sets = {"desk": str(tmp_path / "workstation"), "all": str(merged)}
    with pytest.raises(ResultSetError) as raised:
        merge.check_sets({"sets": sets, "reference": None})
    assert str(raised.value) == f"config key 'merge.sets.all': {said}"
    with pytest.raises(compare.BaselineError) as raised:
        compare.check_baseline(merged)
    assert str(raised.value) == f"config key 'compare.baseline': {said}"


def test_sets_named_by_numbers_merge_and_build_their_page(tmp_path):
    """The finding: `sets: {2024: ..., 2025: ...}` stopped the call with a TypeError (YAML's 2024 is
    a number). Names are labels: read as text, the reference too."""
    paths = three_sets(tmp_path)
    sets = {2024: paths["workstation"], 2025: paths["gpu-node"]}
    merge.check_sets({"sets": sets, "reference": 2025})
    tables, page = merged_page(tmp_path, sets, reference=2025)
    assert list(tables["machines"]["machine"]) == ["2024", "2025"]
    assert "<b>2024</b> against 2025: train phase 3.00x slower" in page
    with pytest.raises(ResultSetError, match="names the set '2024' twice"):
        merge.check_sets({"sets": {2024: paths["workstation"], "2024": paths["laptop"]}, "reference": None})


def test_no_finished_run_in_any_set_builds_a_page_that_says_so(tmp_path):
    """The finding: the merged report crashed (`notebook cell 5 raised KeyError: 'vs'`)."""
    names = ("workstation", "gpu-node")
    sets = {
        name: str(write_baseline(tmp_path / name, failed(runs_table(TIMES)), pd.DataFrame([FACTS[name]])))
        for name in names
    }
    tables, page = merged_page(tmp_path, sets)
    assert tables["settings"].empty and {"vs", "verdict"} <= set(tables["settings"].columns)
    assert "No machine has a finished run" in page and "workstation 0 of 9, gpu-node 0 of 9" in page
    assert "Traceback" not in page


def test_a_set_with_no_finished_run_is_said_to_have_none(tmp_path):
    """The finding: it read `laptop ran no setting that workstation ran`, though it ran them all."""
    sets = three_sets(tmp_path, laptop_runs=failed(runs_table(TIMES)))
    tables = merge.merge(sets, None, 1.1, 0.95)
    lines = by_machine.key_results(tables["settings"], tables["machines"])
    laptop = [line for line in lines if line.startswith("<b>laptop</b>")]
    assert laptop == ["<b>laptop</b> has no finished run (0 of 9 ended ok): no ratio."]
    assert any(
        line.startswith("<b>gpu-node</b> against workstation: train phase 3.00x faster") for line in lines
    )


def test_one_repeat_a_side_is_counted_as_too_few_never_as_same(tmp_path):
    """The finding: `train phase 3.00x slower (0 faster, 2 same, 0 slower)` with one repeat each:
    there is no interval, so nothing can be told either way."""
    one = {batch: seconds[:1] for batch, seconds in TIMES.items() if batch != "128"}
    sets = {
        name: str(
            write_baseline(tmp_path / name, runs_table(one, factor=factor), pd.DataFrame([FACTS[name]]))
        )
        for name, factor in (("workstation", 1.0), ("laptop", 3.0))
    }
    tables = merge.merge(sets, None, 1.1, 0.95)
    laptop = tables["settings"][tables["settings"]["machine"] == "laptop"]
    assert list(laptop["verdict"]) == ["too few repeats"] * 2
    lines = by_machine.key_results(tables["settings"], tables["machines"])
    assert lines[0] == (
        "<b>laptop</b> against workstation: train phase 3.00x slower (median ratio 3.00 over the 2 "
        "settings both ran; 0 faster, 0 same, 0 slower, 2 with too few repeats to tell "
        "(fewer than 2 on a side))."
    )
