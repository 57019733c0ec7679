"""Many result sets merged: per setting and machine the medians, ratios to the reference with
compare's interval and verdict, settings one machine ran listed, old sets read with their gaps said,
bad sets named in one line before any job; and 10 generated sets of 1000 settings in one report."""

import logging
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, snakemake
from fake_results import make_result_set
from test_compare import TIMES, runs_table, write_baseline
from test_report_scale import MOST_FIGURE_PX, MOST_FIGURES, MOST_MB, figure_heights

from mnistbench.report import build as report
from mnistbench.report import merge
from mnistbench.report.plots import machines as by_machine
from mnistbench.results import ratios
from mnistbench.results.result_sets import ResultSetError

FACTS = {
    "workstation": {"hostname": "ws", "cpu_model": "AMD EPYC", "cores_logical": 2},
    "gpu-node": {"hostname": "gpu01", "cpu_model": "Xeon", "cores_logical": 32},
    "laptop": {"hostname": "lap", "cpu_model": "<img src=x onerror=alert(1)>", "cores_logical": 4},
}


def three_sets(tmp_path, laptop_runs=None) -> dict[str, str]:
    """workstation, a gpu node three times faster, a laptop twice as slow with one more setting."""
    laptop = runs_table({**TIMES, "8": [3.0, 3.1, 2.9]}, factor=2.0) if laptop_runs is None else laptop_runs
    tables = {"workstation": runs_table(TIMES), "gpu-node": runs_table(TIMES, factor=1 / 3), "laptop": laptop}
    return {
        name: str(write_baseline(tmp_path / name, runs, pd.DataFrame([FACTS[name]])))
        for name, runs in tables.items()
    }


def test_each_setting_of_two_or_more_machines_gets_ratios_to_the_reference_with_intervals(tmp_path):
    tables = merge.merge(three_sets(tmp_path), None, threshold=1.1, confidence=0.95)
    settings = tables["settings"].set_index(["machine", "batch_size"])
    assert settings.loc[("workstation", 32), "verdict"] == "reference"
    assert settings.loc[("gpu-node", 32), "verdict"] == "faster"
    assert settings.loc[("laptop", 32), "verdict"] == "slower"
    assert settings.loc[("gpu-node", 4), "time_train_ratio"] == pytest.approx(1 / 3)
    low, high = ratios.ratio_interval(np.array(TIMES["4"]) / 3, np.array(TIMES["4"]), 0.95)
    assert settings.loc[("gpu-node", 4), ["time_train_ratio_low", "time_train_ratio_high"]].tolist() == [
        pytest.approx(low),
        pytest.approx(high),
    ]
    # Run by the laptop only: listed as such, no ratio.
    assert settings.loc[("laptop", 8), "verdict"] == merge.ONLY
    assert np.isnan(settings.loc[("laptop", 8), "time_train_ratio"])
    # Every row carries its machine's facts; the labels name what varies (the batch size).
    assert set(tables["runs"]["machine"]) == set(FACTS) and tables["runs"]["cpu_model"].notna().all()
    assert settings.loc[("gpu-node", 32), "cores_logical"] == "32"
    assert set(tables["settings"]["setting"]) == {"b4", "b8", "b32", "b128"}


def test_the_configured_reference_is_the_one_ratios_are_to(tmp_path):
    settings = merge.merge(three_sets(tmp_path), "gpu-node", 1.1, 0.95)["settings"]
    shared = settings[settings["verdict"] != merge.ONLY]
    assert set(shared["vs"]) == {"gpu-node"}
    workstation = shared[shared["machine"] == "workstation"]
    assert workstation["time_train_ratio"].to_numpy() == pytest.approx(3.0)


def test_an_older_set_is_read_with_its_settings_at_their_defaults_and_its_gaps_empty_said_once(
    tmp_path, caplog
):
    """The finding: a set without the hardware settings had every setting `only on this machine`,
    labelled `b4 t- - - jit--`. Its runs used the defaults (1 thread, cpu, float32, jit auto)."""
    hardware = ["threads", "device", "precision", "jit_compile", "partition", "target_accuracy"]
    old = runs_table(TIMES, factor=2.0).drop(columns=[*hardware, "time_epoch_steady"])
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        tables = merge.merge(three_sets(tmp_path, laptop_runs=old), None, 1.1, 0.95)
    said = [r.getMessage() for r in caplog.records if "older version" in r.getMessage()]
    assert len(said) == 1 and "laptop" in said[0], said
    assert "threads 1, device cpu, precision float32, jit_compile auto" in said[0]
    assert "no column time_epoch_steady: read as empty" in said[0]
    machines = tables["machines"].set_index("machine")
    assert machines.loc["laptop", "missing_columns"] == "time_epoch_steady"
    assert pd.isna(machines.loc["workstation", "missing_columns"])
    laptop = tables["settings"][tables["settings"]["machine"] == "laptop"]
    assert sorted(laptop["setting"]) == ["b128", "b32", "b4"]
    assert set(laptop["verdict"]) == {"slower"}  # twice the workstation's times, matched
    lines = by_machine.key_results(tables["settings"], tables["machines"])
    older = [line for line in lines if "older version" in line]
    assert len(older) == 1 and "threads 1" in older[0] and "time_epoch_steady, read as empty" in older[0]


def test_fewer_than_two_sets_or_an_unknown_reference_are_refused(tmp_path):
    sets = three_sets(tmp_path)
    with pytest.raises(ResultSetError, match="names one result set \\(laptop\\); a merge needs two or more"):
        merge.check_sets({"sets": {"laptop": sets["laptop"]}, "reference": None})
    with pytest.raises(ResultSetError, match="'merge.reference': 'server' is not one of the sets"):
        merge.check_sets({"sets": sets, "reference": "server"})


def test_a_link_in_one_set_is_named_by_its_key(tmp_path):
    sets = three_sets(tmp_path)
    machine = tmp_path / "laptop/summary/machine.csv"
    machine.unlink()
    machine.symlink_to(tmp_path / "workstation/summary/machine.csv")
    with pytest.raises(ResultSetError) as raised:
        merge.check_sets({"sets": sets, "reference": None})
    assert str(raised.value) == (
        f"config key 'merge.sets.laptop': {machine} is a symbolic link; "
        "a result set must hold regular files only"
    )


def test_a_bad_set_stops_the_workflow_before_any_job_in_one_line(tmp_path):
    runs = runs_table(TIMES).astype({"time_train": object})
    runs.loc[4, "time_train"] = "12,5 s"
    sets = three_sets(tmp_path, laptop_runs=runs)
    config = {"experiments": {"x": [{}]}, "merge": {"sets": sets}}
    result = snakemake(tmp_path, config, "-n", check=False)
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.startswith("config key")]
    assert result.returncode != 0 and len(lines) == 1, output
    assert lines[0].startswith("config key 'merge.sets.laptop': ")
    assert lines[0].endswith("data row 5 (1-based), column 'time_train': '12,5 s' is not a number")
    assert "Traceback" not in output and not (tmp_path / "results").exists()


def test_formulas_reach_the_merged_tables_as_text_and_the_page_escaped(tmp_path):
    hostile = runs_table(TIMES).assign(optimizer='=HYPERLINK("http://evil.example")', model="<b>x</b>")
    sets = three_sets(tmp_path, laptop_runs=hostile)
    outputs = {name: tmp_path / f"merged/{name}.csv" for name in ("runs", "settings", "machines")}
    merge.run(sets, None, 1.1, 0.95, outputs)
    written = pd.read_csv(outputs["settings"])
    assert (written.loc[written["machine"] == "laptop", "optimizer"].str.startswith("'=")).all()
    html_path = tmp_path / "merged.html"
    parameters = {"merged_dir": str(tmp_path / "merged")}
    report.build(
        str(REPO / "notebooks/merged.ipynb"), str(tmp_path / "merged.ipynb"), str(html_path), parameters
    )
    page = html_path.read_text()
    assert "<img src=x onerror" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>x</b>" not in page
    assert '<tr class="differs">' in page  # the machines differ in cpu and cores


def derived_set(generated, folder, factor: float, cpu: str, cores: int):
    """A copy of a generated set's summary tables as another machine's: every time scaled by
    `factor`, its own CPU and cores (the merge reads only runs.csv and machine.csv)."""
    (folder / "summary").mkdir(parents=True)
    runs = pd.read_csv(generated / "summary/runs.csv")
    timed = [
        c for c in runs if c in ("time_train", "time_epoch_steady", "time_job") or c.startswith("time_to_")
    ]
    runs[timed] *= factor
    runs["cpu_model"] = cpu
    runs.to_csv(folder / "summary/runs.csv", index=False)
    machine = pd.read_csv(generated / "summary/machine.csv").assign(cpu_model=cpu, cores_logical=cores)
    machine.to_csv(folder / "summary/machine.csv", index=False)
    return folder


@pytest.mark.slow
def test_ten_sets_of_a_thousand_settings_merge_into_a_report_within_the_stated_limits(tmp_path):
    """One generated set (tests/fake_results.py, the real aggregation) and nine copies of its
    tables as other machines (times scaled, their own CPU and cores): 20,000 runs."""
    generated = make_result_set(tmp_path / "generated", 1000, repeats=2)
    sets = {"m0": str(generated)}
    for k in range(1, 10):
        sets[f"m{k}"] = str(derived_set(generated, tmp_path / f"m{k}", 0.5 + 0.2 * k, f"CPU {k}", 2 * k))
    outputs = {name: tmp_path / f"merged/{name}.csv" for name in ("runs", "settings", "machines")}
    tables = merge.run(sets, None, 1.1, 0.95, outputs)
    assert len(tables["runs"]) == 20000 and tables["settings"]["machine"].nunique() == 10
    assert (tables["settings"]["verdict"] == "faster").sum() > 900  # m1, 0.7 times m0's times
    html_path = tmp_path / "merged.html"
    parameters = {"merged_dir": str(tmp_path / "merged")}
    report.build(
        str(REPO / "notebooks/merged.ipynb"), str(tmp_path / "merged.ipynb"), str(html_path), parameters
    )
    html = html_path.read_text()
    heights = figure_heights(html)
    assert 1 <= len(heights) <= MOST_FIGURES and max(heights) <= MOST_FIGURE_PX
    assert html_path.stat().st_size <= MOST_MB * 2**20
    assert 'id="ratios-machine"' in html and html.count("<li>") <= 30
    shutil.rmtree(tmp_path / "generated/results/runs")  # 2000 folders: leave less behind


def test_compare_labels_settings_as_the_report_does(tmp_path):
    """The finding: four settings of one grid that differ in learning rate and normalize all read
    `mnist mlp64-linear adam b32 e1 s0 tensorflow` on compare.html."""
    from mnistbench.report import compare

    runs = pd.concat(
        runs_table({"32": [1.0, 1.1]}).assign(learning_rate=rate, normalize=normalize)
        for rate in (0.01, None)
        for normalize in ("scale", "none")
    )
    baseline = write_baseline(tmp_path / "baseline", runs, pd.DataFrame([FACTS["laptop"]]))
    ours = write_baseline(tmp_path / "ours", runs, pd.DataFrame([FACTS["workstation"]])) / "summary"
    outputs = {"table": tmp_path / "out/compare.csv", "html": tmp_path / "out/compare.html"}
    inputs = {"runs": ours / "runs.csv", "machine": ours / "machine.csv"}
    compare.run(inputs, outputs, baseline, threshold=1.1, confidence=0.95)
    page = outputs["html"].read_text()
    for label in ("lr0.01 norm-scale", "lr0.01 norm-none", "lrdefault norm-scale", "lrdefault norm-none"):
        assert f"<td>{label}</td>" in page, label
