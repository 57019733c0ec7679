"""The generated result set (tests/fake_results.py): the shape the real aggregation gives it,
every fact it reads, and the same files for the same seed."""

import json

import pandas as pd
import pytest
from fake_results import default_dimensions, make_config, make_result_set, prefix_sweeps

from mnistbench import grid
from mnistbench.results import summary
from mnistbench.stopwatch import PHASES, phase_column

N_SETTINGS, REPEATS = 20, 2
# Columns of runs.csv that an ok run on a CPU, without a target or SLURM, leaves empty.
EMPTY_WHEN_OK = {"error", "why_unpinned", "gpu_name", "peak_gpu_memory_mb", "reached_target", "slurm_job_id"}
EMPTY_WHEN_OK |= {"slurm_partition", "target_accuracy", "learning_rate", "partition", "hidden_units"}
EMPTY_WHEN_OK |= {"activation"}  # hidden_units and activation: None for softmax and cnn
EMPTY_WHEN_OK |= {"compile_in_first_epoch_s"}  # compiled ahead: no first-epoch estimate
EMPTY_WHEN_OK |= {"gpu_utilization_mean", "gpu_utilization_max", "gpu_power_mean_w", "gpu_power_max_w"}
EMPTY_WHEN_OK |= {"gpu_energy_j", "gpu_sampled_seconds", "cpu_energy_unavailable"}  # RAPL readable
EMPTY_WHEN_OK |= {"network", "flops_unknown_layers"}  # shipped models only, every layer counted


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_result_set(tmp_path_factory.mktemp("fake"), N_SETTINGS, REPEATS)


def read(results, table):
    return pd.read_csv(results / "summary" / f"{table}.csv")


def test_one_row_per_run_and_per_setting_that_finished(results):
    runs, settings = read(results, "runs"), read(results, "settings")
    assert len(runs) == N_SETTINGS * REPEATS
    assert sorted(p.name for p in (results / "runs").iterdir()) == sorted(runs["run"])
    statuses = runs["status"].value_counts().to_dict()
    assert statuses["diverged"] == REPEATS  # one setting, every repeat
    assert statuses["failed"] >= 1 and statuses["crashed"] == 1
    # A failure never takes every repeat of a setting: only the diverged setting has no row.
    assert len(settings) == N_SETTINGS - 1
    assert set(settings["runs"].str.split(";").explode()) == set(runs.loc[runs["status"] == "ok", "run"])


def test_columns_are_those_the_aggregation_writes(results, tmp_path):
    runs, settings = read(results, "runs"), read(results, "settings")
    assert list(settings.columns) == list(summary.settings_table(runs.iloc[:0]).columns)
    for target in ("0.9", "0.97", "0.99"):
        assert {f"time_to_{target}", f"wall_to_{target}", f"epochs_to_{target}"} <= set(runs.columns)
        assert {f"time_to_{target}_median", f"wall_to_{target}_q3", f"reached_{target}"} <= set(
            settings.columns
        )
    assert {phase_column(phase) for phase in PHASES} <= set(runs.columns)
    # Every fact aggregate reads from metrics.json is there: an ok run leaves no other column empty.
    ok = runs[runs["status"] == "ok"]
    to_target = ("time_to_", "wall_to_", "epochs_to_", "flops_to_", "gpu_energy_to_", "cpu_energy_to_")
    timed = [c for c in runs.columns if c.startswith(to_target)]
    empty = [c for c in runs.columns if ok[c].isna().all() and c not in EMPTY_WHEN_OK | set(timed)]
    assert empty == []
    assert ok["time_to_0.9"].notna().any() and settings["reached_0.97"].gt(0).any()
    for table in ("timings", "history", "machine", "datasets"):
        assert len(read(results, table)), table


def test_runs_look_like_the_workflows(results):
    runs = read(results, "runs").set_index("run")
    history = read(results, "history")
    for name, status in runs["status"].items():
        folder = results / "runs" / name
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["params"] == grid.Run.of(metrics["params"]).settings()
        epochs = history[history["run"] == name]
        if status in ("failed", "crashed"):
            assert epochs.empty and metrics["error"]
            continue
        assert len(epochs) == metrics["epochs_completed"] == runs.loc[name, "epochs_completed"]
        assert epochs["train_clock"].is_monotonic_increasing
        confusion = pd.read_csv(folder / "confusion.csv").set_index("true")
        assert confusion.to_numpy().trace() / confusion.to_numpy().sum() == pytest.approx(
            metrics["test_accuracy"], abs=0.002
        )
        if status == "ok":
            assert epochs["test_accuracy"].is_monotonic_increasing
            assert 0.8 <= metrics["test_accuracy"] <= 0.995


def test_the_same_seed_writes_the_same_set(results, tmp_path):
    again = make_result_set(tmp_path, N_SETTINGS, REPEATS)
    for table in ("runs", "settings", "history", "timings"):
        pd.testing.assert_frame_equal(read(again, table), read(results, table))
    metrics = sorted((results / "runs").glob("*/metrics.json"))
    assert [p.read_text() for p in metrics] == [
        (again / "runs" / p.parent.name / p.name).read_text() for p in metrics
    ]


@pytest.mark.parametrize("n", [3, 20, 120, 1000])
def test_the_config_has_exactly_n_settings(n):
    jobs, _ = grid.expand(make_config(n, repeats=1))
    assert len(jobs) == n
    # Every model stays in the sweep, however small.
    assert default_dimensions(n - 2)["model"] == ["softmax", "mlp", "cnn"]


def test_a_cut_sweep_is_a_few_smaller_sweeps():
    dimensions = {"a": [1, 2, 3], "b": [1, 2], "c": [1, 2, 3, 4]}
    for count in range(1, 25):
        sweeps = prefix_sweeps(dimensions, count)
        settings = [s for sweep in sweeps for s in grid._experiment_runs(sweep)]
        assert len(settings) == len({tuple(s.items()) for s in settings}) == count
