"""A run is never labelled with hardware it did not get: one whose threads exceed the cores it
would get is refused before any job starts, or, where only the node knows, fails untrained."""

import json
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import snakemake, snakemake_command

from mnistbench import cores
from mnistbench.grid import Run
from mnistbench.results import summary

SMALL = {"model": "softmax", "batch_size": 32, "epochs": 1}
WIDE = Run.of({**SMALL, "threads": 2}).name


def config_of(formats, **experiments):
    return {
        "defaults": SMALL,
        "experiments": experiments,
        "data": {"mnist": {"local_path": str(formats["npz"])}},
    }


def test_a_run_asking_for_more_threads_than_the_call_has_cores_is_refused_before_any_job(tmp_path, formats):
    config = config_of(formats, narrow=[{}], wide=[{"threads": 2}])
    result = snakemake(tmp_path, config, "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    refusals = [line for line in output.splitlines() if "1 core(s)" in line]
    assert len(refusals) == 1 and f"run {WIDE} asks for 2 threads" in refusals[0], output[-3000:]
    assert f"run {Run.of(SMALL).name} asks" not in output  # the run that fits is not refused
    # Nothing started: not the download, not the narrow run that would fit.
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()
    # A dry run (which has no start) warns in the same line.
    looking = snakemake(tmp_path, config, "--cores", "1", "-n")
    assert refusals[0].split(" (and")[0] in looking.stdout + looking.stderr


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset (util-linux)")
def test_a_job_given_fewer_cpus_than_its_threads_fails_the_run_without_training_it(tmp_path, formats):
    # The call has 2 cores, so planning lets the run through, but the job may use one CPU only:
    # as a cluster node smaller than the run, found out only when the job starts there.
    config = config_of(formats, wide=[{"threads": 2}])
    command = snakemake_command(tmp_path, config, "--cores", "2", "results/summary/runs.csv")
    result = subprocess.run(["taskset", "-c", "0", *command], cwd=tmp_path, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and f"1 of 1 runs did not end ok ({WIDE}: failed)" in output, output[-3000:]
    run = pd.read_csv(tmp_path / "results/summary/runs.csv").set_index("run").loc[WIDE]
    line = f"run {WIDE} asks for 2 threads, but its job has 1 core(s) (2 thread(s) given, CPUs 0)"
    assert run["status"] == "failed" and run["error"].startswith(line), run["error"]
    assert run["epochs_completed"] == 0 and pd.isna(run["time_train"])  # nothing trained
    assert line in (tmp_path / "results/runs" / WIDE / "train.log").read_text()


def test_the_job_check_lets_a_run_with_its_cores_through():
    assert cores.refused_on_the_node("r", 2, 2, [0, 1]) is None
    assert cores.refused_on_the_node("r", 1, 1, [3]) is None
    assert "has 1 core(s)" in cores.refused_on_the_node("r", 2, 1, [0, 1, 2, 3])
    assert cores.refused_at_planning("run r", 4, 4) is None
    assert cores.refused_at_planning("run r", 8, 4).startswith(
        "run r asks for 8 threads, but this call has 4 core(s)"
    )


def recorded(**facts):
    """metrics.json of an ok run of threads 2, as the summary reads it."""
    return {
        "run": WIDE,
        "status": "ok",
        "params": Run.of({**SMALL, "threads": 2}).settings(),
        "timings": {"train": 1.0},
        "host": {"hostname": "here"},
        "threads": 2,
        "threads_used": 2,
        "cpus": [0, 1],
        **facts,
    }


@pytest.mark.parametrize(
    "facts, said",
    [
        # The run: Snakemake lowered threads 2 to the call's one core.
        ({"threads": 1, "threads_used": 1, "cpus": [0]}, "threads given 1, threads used 1, CPUs 1"),
        ({"threads_used": 1}, "threads used 1"),
        ({"cpus": [5]}, "CPUs 1"),
    ],
)
def test_a_recorded_run_that_had_fewer_threads_is_not_shown_as_its_setting(tmp_path, facts, said):
    folder = tmp_path / WIDE
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(recorded(**facts)))
    pd.DataFrame({"s": [2.0], "max_rss": [100.0], "cpu_time": [3.0]}).to_csv(
        folder / "benchmark.tsv", sep="\t", index=False
    )
    history = {
        "epoch": [1],
        "seconds": [1.0],
        "test_accuracy": [0.9],
        "train_clock": [1.0],
        "wall_clock": [1.2],
    }
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    inputs = {key: [str(folder / f"{key}.{ext}")] for key, ext in (("metrics", "json"), ("benchmark", "tsv"))}
    inputs.update(history=[str(folder / "history.csv")], provenance=[])
    outputs = {table: str(tmp_path / f"{table}.csv") for table in summary_tables()}
    runs = summary.aggregate(inputs, outputs, {WIDE: ["wide"]}, targets=[0.9]).set_index("run")
    assert runs.loc[WIDE, "status"] == "failed"
    assert runs.loc[WIDE, "error"] == f"asks for 2 threads but had {said}, so it is not shown as its setting"
    assert pd.read_csv(outputs["settings"]).empty  # in no figure or ratio as threads 2
    # A run that had its threads stays as it was.
    (folder / "metrics.json").write_text(json.dumps(recorded(cpus=[0, 1, 2, 3])))
    assert (
        summary.aggregate(inputs, outputs, {WIDE: ["wide"]}, [0.9]).set_index("run").loc[WIDE, "status"]
        == "ok"
    )


def summary_tables():
    return ("runs", "settings", "timings", "history", "machine", "datasets")
