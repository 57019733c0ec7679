"""The real workflow, run by snakemake on small data in the real formats."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import make_arrays, snakemake

from mnistbench.data import readers
from mnistbench.data.dataset import content_digest
from mnistbench.data.prepare import load_prepared, normalized
from mnistbench.files import save_npz
from mnistbench.results import mlperf


def test_download_skips_a_corrupt_mirror_then_prepares(tmp_path, formats, arrays, serve):
    site = tmp_path / "site"
    site.mkdir()
    (site / "mnist.npz").write_bytes(formats["npz"].read_bytes()[:-100])
    base = serve(site)
    idx = serve(formats["idx"])
    hashes = {
        k: "md5:" + readers.file_hash(formats["idx"] / f"{s}.gz", "md5") for k, s in readers.IDX_FILES.items()
    }
    config = {
        "experiments": {"one": [{"model": "softmax"}]},
        "data": {
            "mnist": {
                "mirrors": [
                    {
                        "name": "corrupt",
                        "kind": "npz",
                        "url": f"{base}/mnist.npz",
                        "hash": "sha256:" + readers.file_hash(formats["npz"]),
                    },
                    {"name": "idx-mirror", "kind": "idx", "url": idx, "hashes": hashes},
                ]
            }
        },
    }
    work = tmp_path / "work"
    work.mkdir()
    snakemake(work, config, "--cores", "1", "resources/prepared/mnist_standardize.npz")

    fetched = readers.read_npz(work / "resources/mnist.npz")
    assert content_digest(fetched) == content_digest(arrays)
    provenance = json.loads((work / "resources/mnist.json").read_text())
    assert provenance["source"] == "idx-mirror"
    assert provenance["failed_before"][0].startswith("corrupt (")
    assert provenance["counts"]["x_train"] == len(arrays["x_train"])
    assert not list((work / "resources/downloads/mnist").glob("mnist.npz*"))
    log = (work / "resources/logs/download_mnist.log").read_text()
    assert "source corrupt failed" in log and "fetched from idx-mirror" in log

    prepared, shift, scale = load_prepared(work / "resources/prepared/mnist_standardize.npz")
    assert content_digest(prepared) == content_digest(arrays)
    assert prepared["x_train"].dtype == np.uint8  # a quarter of float32's bytes to load
    seen = normalized(prepared["x_train"], shift, scale)
    assert abs(float(seen.mean())) < 1e-4
    assert abs(float(seen.std()) - 1) < 1e-3


def test_no_source_fails_with_one_clear_line(tmp_path):
    config = {
        "experiments": {"one": [{"model": "softmax"}]},
        "data": {
            "mnist": {
                "mirrors": [
                    {
                        "name": "nothing-here",
                        "kind": "npz",
                        "url": "http://127.0.0.1:9/mnist.npz",
                        "hash": "md5:" + "0" * 32,
                    }
                ]
            }
        },
    }
    result = snakemake(tmp_path, config, "--cores", "1", "resources/mnist.npz", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert re.search(r"NoSourceError: mnist: no source worked; tried nothing-here \(.*local_path", output)
    assert not (tmp_path / "resources/mnist.npz").exists()


GRID = {
    "defaults": {"epochs": 2, "batch_size": 32, "hidden_units": 16},
    "experiments": {
        "pair": [
            {"model": "mlp", "optimizer": "adam"},
            {"model": "softmax", "optimizer": "sgd", "learning_rate": 0.1},
        ],
        "sweep": {"model": ["softmax", "mlp"], "optimizer": ["adam"], "hidden_units": [16, 8]},
        # Climbs epoch by epoch on the small data (test accuracy 0.19, 0.52, 0.77, ...): stops at 3.
        "target": [
            {
                "model": "softmax",
                "optimizer": "sgd",
                "learning_rate": 0.003,
                "epochs": 6,
                "target_accuracy": 0.75,
            }
        ],
    },
    "targets": [0.5, 0.75, 0.999],
}
TARGET_RUN = "mnist_softmax_sgd-lr0.003_b32_e6_scale_s0_tf_to0.75"


@pytest.mark.slow
def test_grid_trains_each_unique_run_once_and_only_new_ones_later(tmp_path, formats):
    config = {**GRID, "data": {"mnist": {"local_path": str(formats["npz"])}}}
    snakemake(tmp_path, config, "--cores", "2")

    all_runs = pd.read_csv(tmp_path / "results/summary/runs.csv")
    target = all_runs.set_index("run").loc[TARGET_RUN]
    runs = all_runs[all_runs["run"] != TARGET_RUN]
    # pair: 2 runs; sweep: softmax (hidden units do not apply) + mlp16 + mlp8; mlp16-adam is shared.
    assert len(runs) == 4
    assert set(all_runs["status"]) == {"ok"}
    shared = runs[runs["run"].str.contains("mlp16")]
    assert shared["experiments"].item() == "pair;sweep"
    for phase in ("startup", "data_load", "compile", "train", "eval", "test"):
        assert runs[f"time_{phase}"].gt(0).all(), phase
    assert runs["test_accuracy"].min() > 0.5  # the fixture is learnable
    assert runs["peak_memory_mb"].gt(0).all() and runs["threads"].eq(1).all()

    # Time to accuracy: the target run stopped at the first epoch that reached its target.
    history = pd.read_csv(tmp_path / "results/runs" / TARGET_RUN / "history.csv")
    assert target["epochs_completed"] == 3 and target["reached_target"]
    assert history["test_accuracy"].iloc[-1] >= 0.75 > history["test_accuracy"].iloc[:-1].max()
    assert target["time_to_0.75"] == history["train_clock"].iloc[-1] < target["wall_to_0.75"]
    assert target["epochs_to_0.75"] == 3 and pd.isna(target["time_to_0.999"])
    settings = pd.read_csv(tmp_path / "results/summary/settings.csv").set_index("runs")
    assert settings.loc[TARGET_RUN, "reached_0.75"] == 1 and settings.loc[TARGET_RUN, "reached_0.999"] == 0
    # Every run's mlperf.log passes mlperf-logging's compliance checker with our mnist rules.
    for name in (TARGET_RUN, runs["run"].iloc[0]):
        passed, output = mlperf.check_log(tmp_path / "results/runs" / name / "mlperf.log")
        assert passed, output[-2000:]

    run = tmp_path / "results/runs" / runs["run"].iloc[0]
    for name in (
        "model.keras",
        "history.csv",
        "timings.csv",
        "predictions.npz",
        "metrics.json",
        "train.log",
        "benchmark.tsv",
        "confusion.csv",
        "per_class.csv",
        "mlperf.log",
    ):
        assert (run / name).stat().st_size > 0, name
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2] and history["samples_per_second"].gt(0).all()
    timings = pd.read_csv(tmp_path / "results/summary/timings.csv")
    assert set(timings["phase"]) == {"startup", "data-load", "compile", "train", "eval", "test"}
    assert len(pd.read_csv(tmp_path / "results/summary/machine.csv")) == 1
    assert "epoch 2: loss" in (run / "train.log").read_text()
    assert not list((tmp_path / ".snakemake/mnistbench/holders").glob("*.json"))  # the call forgot itself

    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results/runs").glob("*/metrics.json")}
    config["experiments"]["sweep"]["hidden_units"].append(4)
    plan = snakemake(tmp_path, config, "-n", "--quiet", "rules").stdout
    assert re.search(r"^train\s+1$", plan, re.M), plan
    snakemake(tmp_path, config, "--cores", "2")
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "results/runs").glob("*/metrics.json")}
    assert {p: after[p] for p in before} == before
    assert len(after) == 6


def test_a_new_file_at_local_path_is_fetched_again(tmp_path, formats, arrays):
    local = tmp_path / "mine.npz"
    local.write_bytes(formats["npz"].read_bytes())
    config = {"experiments": {"one": [{"model": "softmax"}]}, "data": {"mnist": {"local_path": str(local)}}}
    work = tmp_path / "work"
    work.mkdir()
    snakemake(work, config, "--cores", "1", "resources/mnist.npz")
    assert "Nothing to be done" in snakemake(work, config, "-n", "resources/mnist.npz").stdout
    save_npz(local, make_arrays(seed=8))  # a new file at the same path
    plan = snakemake(work, config, "resources/mnist.npz", "-n", "--quiet", "rules").stdout
    assert re.search(r"^download\s+1$", plan, re.M), plan


def test_checks_of_the_login_nodes_disk_run_where_snakemake_plans_only(tmp_path):
    """A cluster job parses the workflow again on its node, where the main call's local_path
    and baseline need not exist: it must not check them (the main call did)."""
    config = {
        "experiments": {"one": [{"model": "softmax"}]},
        "data": {"mnist": {"local_path": "/login-node/only/mnist.npz"}},
        "compare": {"baseline": "/login-node/only/results"},
    }
    planning = snakemake(tmp_path, config, "-n", "resources/mnist.npz", check=False)
    assert planning.returncode != 0
    assert (
        "config key 'data.mnist.local_path': /login-node/only/mnist.npz does not exist"
        in planning.stdout + planning.stderr
    )
    remote = snakemake(tmp_path, config, "-n", "--mode", "remote", "resources/mnist.npz", check=False)
    assert "does not exist" not in remote.stdout + remote.stderr, remote.stderr[-2000:]


HARDWARE = {
    "defaults": {"epochs": 2, "batch_size": 32, "hidden_units": 16, "model": "mlp"},
    "experiments": {
        "hardware": {
            "threads": [1, 2],
            "precision": ["float32", "mixed_bfloat16"],
            "jit_compile": ["auto", True],
        },
        "gpu": [{"device": "gpu"}],
    },
}


@pytest.mark.slow
@pytest.mark.apart_from("test_hardware")  # its one-thread runs are pinned: a CPU must be free
def test_hardware_dimensions_sweep_threads_precision_and_compiler(tmp_path, formats):
    config = {**HARDWARE, "data": {"mnist": {"local_path": str(formats["npz"])}}}
    result = snakemake(tmp_path, config, "--cores", "2", check=False)
    output = result.stdout + result.stderr
    gpu_run = "mnist_mlp16-linear_adam-lrdefault_b32_e2_scale_s0_tf_gpu"
    assert result.returncode != 0 and f"1 of 9 runs did not end ok ({gpu_run}: failed)" in output, output[
        -3000:
    ]

    runs = pd.read_csv(tmp_path / "results/summary/runs.csv").set_index("run")
    assert runs.loc[gpu_run, "error"].startswith("NoGpuError: device gpu: TensorFlow sees no GPU")
    assert "\n" not in runs.loc[gpu_run, "error"]
    cpu = runs.drop(index=gpu_run)
    assert len(cpu) == 8 and set(cpu["status"]) == {"ok"}
    # The lesson's name scheme is kept: settings at their defaults add nothing to a name.
    assert "mnist_mlp16-linear_adam-lrdefault_b32_e2_scale_s0_tf" in cpu.index
    assert "mnist_mlp16-linear_adam-lrdefault_b32_e2_scale_s0_tf_t2_bf16_xla" in cpu.index
    for name, row in cpu.iterrows():
        metrics = json.loads((tmp_path / "results/runs" / name / "metrics.json").read_text())
        assert len(metrics["cpus"]) == row["threads"] == metrics["threads_used"], name
        assert metrics["dtype_policy"] == row["precision"] and metrics["device"] == "CPU"
        assert metrics["jit_compile"] == (row["jit_compile"] == "True"), name
    float32 = cpu[cpu["precision"] == "float32"].set_index(["threads", "jit_compile"])["test_accuracy"]
    bf16 = cpu[cpu["precision"] == "mixed_bfloat16"].set_index(["threads", "jit_compile"])["test_accuracy"]
    assert (float32 - bf16).abs().max() <= 0.01 + 1e-9  # within a point

    report = (tmp_path / "results/report.html").read_text()
    for dimension in ("threads", "precision", "jit_compile"):  # a section each, with its ratio table
        assert f'id="dimension-{dimension}"' in report and f'id="ratios-{dimension}"' in report, dimension
    assert "efficiency" in report
    assert "t2 bf16 xla" in report  # labels name the settings that vary
