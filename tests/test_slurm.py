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
# The local test cluster has no accounting database: job status comes from squeue.
NO_ACCOUNTING = [
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "5",
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
