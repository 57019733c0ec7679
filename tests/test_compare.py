"""Two result sets compared: verdicts from a bootstrap interval and a threshold, settings matched
by their values, bad baselines named in one line; end to end on two real result sets."""

import re
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, snakemake

from mnistbench import compare
from mnistbench.grid import Run


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
    single = compare.compare(runs_table({"4": [5.0]}), runs_table({"4": [15.0]}))
    assert single.iloc[0]["verdict"] == "same"  # one repeat tells nothing of the spread


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
def test_two_real_result_sets_compared_end_to_end(tmp_path):
    """Two runs of the shipped small config on this machine: mostly `same`; the same baseline
    with every time made three times longer: `faster` for every setting."""
    sets = []
    for name in ("baseline", "new"):
        work = tmp_path / name
        work.mkdir()
        for file in ("config.yaml", "mnist-small.npz"):
            shutil.copy(REPO / ".test" / file, work / file)
        sets.append(work)
    baseline, new = sets
    snakemake(baseline, None, "--configfile", str(baseline / "config.yaml"), "--cores", "2")
    args = ["--configfile", str(new / "config.yaml"), "--cores", "2"]
    snakemake(new, None, *args, "--config", f"compare={{baseline: {baseline / 'results'}}}")
    table = pd.read_csv(new / "results/summary/compare.csv")
    settings = table[~table["verdict"].isin(["geometric mean"])]
    assert len(settings) == 3 and (settings["verdict"] == "same").mean() >= 0.5, settings
    page = (new / "results/compare.html").read_text()
    assert "Machines and software" in page and "data:image/png;base64," in page
    assert not re.search(r'src="https?://', page)

    slow = tmp_path / "slow-baseline"
    shutil.copytree(baseline / "results/summary", slow)
    runs = pd.read_csv(slow / "runs.csv")
    for column in ("time_train", "time_epoch_steady", "time_job"):
        runs[column] *= 3
    runs.to_csv(slow / "runs.csv", index=False)
    snakemake(new, None, *args, "--config", f"compare={{baseline: {slow}}}")
    table = pd.read_csv(new / "results/summary/compare.csv")
    assert list(table.loc[table["verdict"] != "geometric mean", "verdict"]) == ["faster"] * 3


def test_a_missing_baseline_stops_before_any_job(tmp_path):
    config = {"experiments": {"x": [{}]}, "compare": {"baseline": str(tmp_path / "nowhere")}}
    result = snakemake(tmp_path, config, "-n", check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("config key")]
    assert result.returncode != 0 and len(lines) == 1 and "compare.baseline" in lines[0], lines
