"""FLOPs, ceilings, energy and the GPU per host, from runs.csv to the report's tables and figure:
a generated result set (tests/fake_results.py) whose runs are then edited by hand into GPU runs,
aggregated again by the real aggregation."""

import json

import pandas as pd
import pytest
from fake_results import N_TRAIN, make_result_set, summarize

from mnistbench.report import plots
from mnistbench.report.plots import efficiency as report_efficiency
from mnistbench.report.plots.efficiency import read_ceilings
from mnistbench.results import efficiency

H200 = {
    "gpu_name": "NVIDIA H200",
    "gpu_memory_mb": 143771,
    "driver_version": "570.86.15",
    "cudnn_version": "9.10.2",
}
# What GpuSampler.summary() gives for a GPU run: its mean power over 20 s of train phase.
SAMPLED = {
    "gpu_utilization_mean": 1.5,
    "gpu_utilization_max": 12.0,
    "gpu_power_mean_w": 127.0,
    "gpu_power_max_w": 140.0,
    "gpu_samples": 184,
    "gpu_energy_j": 2540.0,
    "gpu_energy_from": "energy counter",
    "gpu_sampled_seconds": 20.0,
}
# FLOPs per image, forward and trained, counted by hand (tests/test_flops.py spells them out):
# forward is the layers' multiply-adds x 2 and bias adds; training adds each layer's weight
# gradient (as much again) and every layer's input gradient but the first's.
HAND_COUNTED = {
    ("softmax", None): (15_690, 31_380),
    ("mlp", 64): (101_706, 204_692),
    ("cnn", None): (4_911_306, 14_315_156),
}


def read(results, table):
    return pd.read_csv(results / "summary" / f"{table}.csv")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A small set in which two runs on node01 used an H200 (PyTorch and JAX, each with its own
    CUDA), and one run's host could not read RAPL."""
    results = make_result_set(tmp_path_factory.mktemp("gpu"), 8, repeats=1)
    ok = read(results, "runs").query("status == 'ok'").sort_values("run")["run"].tolist()
    assert len(ok) >= 4
    for name, backend, cuda in ((ok[0], "torch", "12.8"), (ok[1], "jax", "12.9")):
        path = results / "runs" / name / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics.update(H200, cuda_version=cuda, backend=backend, **SAMPLED)
        metrics["host"]["hostname"] = "gpu-node"
        path.write_text(json.dumps(metrics))
    path = results / "runs" / ok[2] / "metrics.json"
    metrics = json.loads(path.read_text())
    unreadable = "/sys/class/powercap/intel-rapl:0/energy_uj: permission denied (root only since Linux 5.10)"
    metrics.update(cpu_energy_j=None, cpu_energy_seconds=None, cpu_energy_unavailable=unreadable)
    path.write_text(json.dumps(metrics))
    summarize(results)
    return results, ok


def test_the_machine_table_names_the_gpu_of_every_host_that_ran_a_gpu_run(results):
    results, _ = results
    machine = read(results, "machine").set_index("hostname")
    gpu = machine.loc["gpu-node"]
    assert gpu["gpu_name"] == "NVIDIA H200" and int(gpu["gpu_memory_mb"]) == 143771
    assert gpu["gpu_driver_version"] == "570.86.15" and gpu["gpu_cudnn_version"] == "9.10.2"
    assert gpu["gpu_cuda_version"] == "12.8 (torch); 12.9 (jax)"  # each backend's own CUDA
    assert machine.drop(index="gpu-node")["gpu_name"].isna().all()  # hosts without a GPU run
    shown = plots.machine_table(read(results, "machine")).set_index("attribute")
    for row in ("gpu_name", "gpu_memory_mb", "gpu_driver_version", "gpu_cuda_version", "gpu_cudnn_version"):
        assert row in shown.index
    assert "NVIDIA H200" in shown.loc["gpu_name"].tolist()


def test_without_a_gpu_run_the_machine_table_has_no_gpu_rows(tmp_path):
    results = make_result_set(tmp_path, 3, repeats=1)
    assert "gpu_name" in read(results, "machine").columns  # the columns are always written
    assert "gpu_name" not in plots.machine_table(read(results, "machine"))["attribute"].tolist()


def test_runs_record_flops_achieved_flops_and_energy_to_each_target(results):
    results, ok = results
    runs = read(results, "runs").set_index("run")
    history = read(results, "history")
    gpu = runs.loc[ok[0]]
    width = None if pd.isna(gpu["hidden_units"]) else int(gpu["hidden_units"])
    forward, train = HAND_COUNTED[(gpu["model"], width if gpu["model"] == "mlp" else None)]
    assert gpu["flops_forward_per_image"] == forward and gpu["flops_train_per_image"] == train
    assert gpu["flops_per_epoch"] == train * N_TRAIN
    seconds = history[history["run"] == ok[0]]["seconds"]
    steady = seconds.iloc[1:].median() if len(seconds) > 1 else seconds.iloc[0]
    assert gpu["achieved_flops_per_s"] == pytest.approx(train * N_TRAIN / steady)
    reached = [
        c.removeprefix("time_to_") for c in runs.columns if c.startswith("time_to_") and pd.notna(gpu[c])
    ]
    assert reached, "the run reached no target: pick another"
    for label in reached:
        assert gpu[f"flops_to_{label}"] == gpu[f"epochs_to_{label}"] * train * N_TRAIN
        # At the run's mean power (2540 J over 20 s) until the wall clock reached the target.
        assert gpu[f"gpu_energy_to_{label}_j"] == pytest.approx(2540.0 * gpu[f"wall_to_{label}"] / 20.0)
    assert gpu["gpu_power_mean_w"] == 127.0 and gpu["gpu_utilization_max"] == 12.0
    not_reached = [
        c.removeprefix("time_to_") for c in runs.columns if c.startswith("time_to_") and pd.isna(gpu[c])
    ]
    for label in not_reached:  # never 0: empty
        assert pd.isna(gpu[f"flops_to_{label}"]) and pd.isna(gpu[f"gpu_energy_to_{label}_j"])
    cpu = runs.loc[ok[-1]]
    assert pd.isna(cpu["gpu_energy_j"]) and cpu["cpu_energy_j"] > 0


def test_the_report_shows_each_settings_share_of_its_ceiling_against_batch_size(results):
    results, _ = results
    runs = read(results, "runs")
    ceilings = read_ceilings(sorted((results / "ceiling").glob("*.json")))
    shares = report_efficiency.share_of_ceiling(runs, ceilings)
    assert len(shares) == (runs["status"] == "ok").sum()
    one = shares.iloc[0]
    ceiling = next(r for r in ceilings if (r["backend"], r["threads"]) == (one["backend"], one["threads"]))[
        "matmul_flops_per_s"
    ]
    assert one["percent_of_ceiling"] == pytest.approx(100 * one["achieved_flops_per_s"] / ceiling)
    figure, which = report_efficiency.ceiling_figure(runs, ceilings, most=2)
    axes = figure.axes[0]
    assert axes.get_xlabel() == "batch size" and "ceiling" in axes.get_ylabel()
    assert len(axes.get_legend().get_texts()) <= 2 and "2 of" in which
    table = report_efficiency.share_table(runs, ceilings)
    assert table["percent_of_ceiling"].is_monotonic_decreasing and table["percent_of_ceiling"].gt(0).all()


def test_no_ceiling_measured_means_no_share_rather_than_a_wrong_one(results):
    results, _ = results
    runs = read(results, "runs")
    failed = [
        {"device": "cpu", "backend": "jax", "precision": "float32", "threads": 1, "error": "NoGpuError: ..."}
    ]
    assert report_efficiency.ceiling_figure(runs, failed) == (None, "")
    assert report_efficiency.ceiling_table(failed)["error"].tolist() == ["NoGpuError: ..."]


def test_energy_is_shown_where_measured_and_unreadable_rapl_is_said_once_never_as_zero(results):
    results, ok = results
    runs = read(results, "runs")
    table = report_efficiency.energy_table(runs)
    assert {"GPU energy (J)", "CPU energy (J)", "GPU power mean (W)"} <= set(table.columns)
    assert (table.select_dtypes("number").fillna(1) != 0).all().all()  # missing stays empty
    notes = report_efficiency.energy_notes(runs)
    rapl = [note for note in notes if "RAPL" in note]
    assert len(rapl) == 1 and "permission denied" in rapl[0] and "1 of" in rapl[0]


def test_nothing_measured_gives_no_energy_table_and_one_line_per_reason():
    runs = pd.DataFrame(
        {
            "status": ["ok", "ok"],
            "host": ["vm", "vm"],
            "gpu_name": [None, None],
            "cpu_energy_j": [None, None],
            "gpu_energy_j": [None, None],
            "cpu_energy_unavailable": ["/sys/class/powercap does not exist"] * 2,
        }
    )
    assert report_efficiency.energy_table(runs).empty
    notes = report_efficiency.energy_notes(runs)
    assert notes[0].startswith("CPU energy was not measured for 2 of 2 finished runs (host vm)")
    assert "No run used a GPU" in notes[1] and len(notes) == 2


def test_to_target_columns_are_empty_where_nothing_was_measured_or_reached():
    row = {"flops_per_epoch": 100.0, "epochs_to_0.9": 2.0, "wall_to_0.9": 5.0, "epochs_to_0.99": None}
    row.update(gpu_energy_j=None, gpu_sampled_seconds=None, cpu_energy_j=40.0, cpu_energy_seconds=10.0)
    columns = efficiency.to_target_columns(row, ["0.9", "0.99"])
    assert columns == {
        "flops_to_0.9": 200.0,
        "gpu_energy_to_0.9_j": None,
        "cpu_energy_to_0.9_j": 20.0,
        "flops_to_0.99": None,
        "gpu_energy_to_0.99_j": None,
        "cpu_energy_to_0.99_j": None,
    }
