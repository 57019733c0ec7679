"""The workflow on a real SLURM: a single-node cluster on localhost, through profiles/slurm."""

import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import REPO, SLURM_STARTED, copy_workflow, damage_prepared_data, snakemake

LOCAL_SLURM = REPO / "cluster/local-slurm.sh"
# The local test cluster has no accounting database: job status comes from squeue. Its first
# check comes 2 s after a submission (5 s cost each job about 6 s more of polling here).
NO_ACCOUNTING = [
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "2",
]
FAILING = "fashion_mnist_mlp8-linear_adam-lrdefault_b32_e1_scale_s0_tf"


def why_no_slurm():
    if os.geteuid() != 0:
        return "the local SLURM needs root to start its daemons"
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        return "no apt-get to install SLURM, and SLURM is not installed"
    return None


@pytest.fixture(scope="module")
def cluster(session_folder):
    """The local SLURM, running until the session ends (conftest's pytest_sessionfinish stops
    it): stopped earlier, it would slow every snakemake start of the other worker by 10 s."""
    reason = why_no_slurm()
    if reason:
        print(f"SKIPPED SLURM tests: {reason}")
        pytest.skip(reason)
    (session_folder / SLURM_STARTED).touch()
    started = subprocess.run(["bash", str(LOCAL_SLURM), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        pytest.fail(f"local SLURM did not start:\n{started.stdout}\n{started.stderr}")


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.alone  # its jobs run at once and pin themselves: every CPU must be free
def test_grid_runs_through_the_slurm_profile(cluster, tmp_path, formats):
    # Run from a checkout that has its config.yaml, with the user's own config file: every
    # cluster job must see that file's grid, not config.yaml merged back in.
    checkout = copy_workflow(tmp_path / "checkout", with_config=True)
    config = {
        "defaults": {"batch_size": 32, "hidden_units": 8, "epochs": 1},
        "experiments": {
            # Partition and threads as dimensions of the grid: debug is the cluster's default.
            "small": {"model": ["softmax", "mlp"], "partition": ["debug", "batch"]},
            "wide": [{"model": "softmax", "threads": 2, "partition": "batch"}],
            "damaged": [{"model": "mlp", "dataset": "fashion_mnist"}],
        },
        "data": {
            "mnist": {"local_path": str(formats["npz"])},
            "fashion_mnist": {"local_path": str(formats["npz"])},
        },
    }
    snakefile = checkout / "Snakefile"
    damage_prepared_data(checkout, config, "fashion_mnist", snakefile=snakefile)
    result = snakemake(
        checkout,
        config,
        "--profile",
        str(REPO / "profiles/slurm"),
        *NO_ACCOUNTING,
        check=False,
        snakefile=snakefile,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert f"1 of 6 runs did not end ok ({FAILING}: failed)" in output
    # The console's plan and closing summary end a SLURM call as they end a local one.
    assert "Training 6 run(s) (0 already done): about " in output, output[-3000:]
    assert re.search(r"^Done in [^:]+: 5 ok, 1 failed \(of 6 runs\)\.$", output, re.M), output[-3000:]
    assert f"Report: {(checkout / 'results/report.html').resolve()}" in output

    runs = pd.read_csv(checkout / "results/summary/runs.csv")
    assert runs.set_index("run")["status"].to_dict() == {
        **{run: "ok" for run in runs["run"] if run != FAILING},
        FAILING: "failed",
    }
    job_ids = set()
    for run in runs["run"]:
        metrics_path = checkout / "results/runs" / run / "metrics.json"
        if run == FAILING:  # removed so that the next call retries it
            assert not metrics_path.exists()
            continue
        metrics = json.loads(metrics_path.read_text())
        job_id = metrics["host"]["slurm_job_id"]
        assert job_id and job_id.isdigit()
        job_ids.add(job_id)
        # Each job ran in the partition its run asked for (none: the default), on its threads.
        assert metrics["slurm_partition"] == (metrics["params"]["partition"] or "debug"), run
        assert len(metrics["cpus"]) == metrics["params"]["threads"] == metrics["threads"], run
    assert len(job_ids) == 5  # one SLURM job per training run
    assert runs["slurm_job_id"].notna().all()
    assert (checkout / "results/report.html").stat().st_size > 10000


def slurm_job(job_id) -> dict:
    """What the controller holds of a job (kept MinJobAge seconds after it ends), field by field."""
    shown = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", str(job_id)], capture_output=True, text=True, check=True
    )
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout))


def slurm_jobs_of(rule: str, run: str) -> list[int]:
    """The ids of the jobs the executor plugin submitted for `rule` of `run` (it names them in
    the job's comment), oldest first, among those the controller still holds."""
    listed = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i %k"], capture_output=True, text=True, check=True
    )
    comment = f"rule_{rule}_wildcards_{run}"
    return sorted(
        int(job)
        for job, _, named in (line.partition(" ") for line in listed.stdout.splitlines())
        if named == comment
    )


def gpu_request(job: dict) -> str | None:
    """The job's GPU request as SLURM records it (e.g. gres:gpu:1), None without one."""
    asked = [job.get(key, "") for key in ("TresPerJob", "TresPerNode", "TresPerTask")]
    return next((value for value in asked if "gpu" in value), None)


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.alone  # its jobs run at once and pin themselves: every CPU must be free
def test_gpu_runs_ask_slurm_for_a_gpu_and_fail_in_one_line_without_one(cluster, tmp_path, formats):
    # The local node declares two stand-in GPUs of type "standin" (cluster/local-slurm.sh):
    # SLURM hands one to a job that asks, but no framework sees a GPU behind it.
    config = {
        "defaults": {"model": "softmax", "batch_size": 32, "epochs": 1},
        "experiments": {"devices": {"device": ["cpu", "gpu"]}},
        "data": {"mnist": {"local_path": str(formats["npz"])}},
    }
    slurm = ["--profile", str(REPO / "profiles/slurm"), *NO_ACCOUNTING]
    # The summary table is enough here (the report of a failed run under SLURM: the test above).
    result = snakemake(tmp_path, config, *slurm, "results/summary/runs.csv", check=False)
    output = result.stdout + result.stderr
    runs = pd.read_csv(tmp_path / "results/summary/runs.csv").set_index("device")
    gpu_run, cpu_run = runs.loc["gpu"], runs.loc["cpu"]
    assert result.returncode != 0, output[-3000:]
    assert f"1 of 2 runs did not end ok ({gpu_run['run']}: failed)" in output, output[-3000:]
    assert re.search(r"^Done in [^:]+: 1 ok, 1 failed \(of 2 runs\)\.$", output, re.M), output[-3000:]
    assert cpu_run["status"] == "ok"  # nothing else is lost
    # One line: a GPU was asked for, SLURM gave one, and the framework sees none.
    error = gpu_run["error"]
    assert "\n" not in error
    assert error.startswith("NoGpuError: device gpu: TensorFlow sees no GPU (CUDA_VISIBLE_DEVICES='"), error
    assert f"SLURM job {int(gpu_run['slurm_job_id'])} was given 1 GPU(s)" in error, error

    gpu_job, cpu_job = slurm_job(int(gpu_run["slurm_job_id"])), slurm_job(int(cpu_run["slurm_job_id"]))
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True).stdout.strip()
    assert gpu_request(gpu_job) == "gres:gpu:1", gpu_job
    assert gpu_job["NodeList"] == node and gpu_job["JobState"] == "COMPLETED", gpu_job
    assert gpu_request(cpu_job) is None and "gpu" not in cpu_job["TRES"], cpu_job
    assert cpu_job["NodeList"] == node

    # A GPU type named (train.gpu_model): the gpu run, forgotten when it failed, trains again
    # and its job asks for that type and gets one of the node's.
    typed = {**config, "train": {"gpu_model": "standin"}}
    metrics = f"results/runs/{gpu_run['run']}/metrics.json"
    result = snakemake(tmp_path, typed, *slurm, metrics, check=False)
    output = result.stdout + result.stderr
    assert f"1 of 2 runs did not end ok ({gpu_run['run']}: failed)" in output, output[-3000:]
    typed_id = slurm_jobs_of("train", gpu_run["run"])[-1]
    assert typed_id > int(gpu_job["JobId"])
    typed_job = slurm_job(typed_id)
    assert gpu_request(typed_job) == "gres:gpu:standin:1", typed_job
    assert typed_job["NodeList"] == node and typed_job["JobState"] == "COMPLETED", typed_job
    log = (tmp_path / "results/runs" / gpu_run["run"] / "train.log").read_text()
    assert "NoGpuError: device gpu: TensorFlow sees no GPU (CUDA_VISIBLE_DEVICES='" in log
    assert f"SLURM job {typed_id} was given 1 GPU(s))\n" in log, log[-2000:]
