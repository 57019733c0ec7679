"""The console a person reads: the plan's estimate, the per-run lines, and the logger plugin that
keeps Snakemake's per-job detail in the full log unless asked for (the .test grid's console, for
real, is checked in test_timings.py)."""

import socket

import pandas as pd
import pytest
from conftest import snakemake

from mnistbench import grid
from mnistbench.grid import Run
from mnistbench.report import console

DEFAULTS = {**Run().settings(), "repeats": 2}
JOBS, _ = grid.expand({"defaults": DEFAULTS, "experiments": {"models": {"model": ["softmax", "cnn"]}}})
SOFTMAX, SOFTMAX_2, CNN, CNN_2 = (
    Run.of({**DEFAULTS, "model": "softmax"}).name,
    Run.of({**DEFAULTS, "model": "softmax"}).name + "_r2",
    Run.of({**DEFAULTS, "model": "cnn"}).name,
    Run.of({**DEFAULTS, "model": "cnn"}).name + "_r2",
)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.4, "0 s"),
        (44.6, "45 s"),
        (200, "3 min 20 s"),
        (180, "3 min"),
        (1500, "25 min"),
        (3900, "1 h 5 min"),
    ],
)
def test_durations_read_as_a_person_plans(seconds, text):
    assert console.duration(seconds) == text


def test_without_past_results_the_estimate_is_the_cost_model_and_says_so():
    seconds, source = console.estimate(JOBS, [SOFTMAX, CNN], past={})
    assert "cost model" in source
    assert seconds[CNN] == console.JOB_OVERHEAD_S + JOBS[CNN].run.expected_train_seconds() > seconds[SOFTMAX]


def test_past_results_of_this_machine_give_the_estimate(tmp_path):
    """A run done before takes its past job time; another is the cost model scaled by how the
    past runs of the grid compared with it. Other hosts and runs not ok do not count."""
    host = socket.gethostname()
    runs = pd.DataFrame(
        {
            "run": [SOFTMAX, SOFTMAX_2, CNN, "elsewhere"],
            "status": ["ok", "ok", "failed", "ok"],
            "host": [host, host, host, "another-host"],
            "time_job": [12.0, 14.0, 99.0, 1.0],
        }
    )
    runs.to_csv(tmp_path / "runs.csv", index=False)
    past = console.past_job_seconds(tmp_path / "runs.csv")
    assert past == {SOFTMAX: 12.0, SOFTMAX_2: 14.0}
    seconds, source = console.estimate(JOBS, [SOFTMAX, CNN_2], past)
    assert "past results (2 runs" in source and seconds[SOFTMAX] == 12.0
    scale = 13.0 / console.cost_model_seconds(JOBS[SOFTMAX])
    assert seconds[CNN_2] == pytest.approx(scale * console.cost_model_seconds(JOBS[CNN_2]))
    assert console.past_job_seconds(tmp_path / "none.csv") == {}


def test_each_finished_run_is_counted_labelled_and_the_time_left_follows_the_pace():
    labels = console.setting_labels(JOBS)
    assert labels[SOFTMAX] == "softmax" and labels[CNN_2] == "cnn (repeat 2)"
    line, planned = console.plan(JOBS, labels, [SOFTMAX, CNN, CNN_2], done=1, past={})
    assert line.startswith("Training 3 run(s) (1 already done): about ")
    planned["runs"] = {name: {**run, "seconds": 10.0} for name, run in planned["runs"].items()}
    progress = console.Progress(planned)
    metrics = {"status": "ok", "test_accuracy": 0.9123, "timings": {"train": 3.14159}}
    # The first run took twice its estimate: the two left are expected to as well.
    first = progress.line(CNN, metrics, now=planned["started"] + 20)
    assert first == "[1/3] cnn: ok, test accuracy 91.23%, train phase 3.14 s; about 40 s left"
    failed = progress.line(SOFTMAX, {"status": "failed", "timings": {}}, now=planned["started"] + 30)
    assert failed == "[2/3] softmax: failed; about 15 s left"
    last = progress.line(CNN_2, None, now=planned["started"] + 40)
    assert last.startswith("[3/3] cnn (repeat 2): job failed") and last.endswith("all trained")


def test_the_closing_lines_count_the_runs_and_name_the_report(tmp_path):
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    ended = {SOFTMAX: "ok", CNN: "ok", CNN_2: "crashed"}
    lines = console.closing_lines(ended, 125, None, [report, tmp_path / "compare.html"])
    assert lines == ["Done in 2 min 5 s: 2 ok, 1 crashed (of 3 runs).", f"Report: {report}"]


def test_the_detail_setting_brings_snakemakes_job_blocks_back_to_the_console(tmp_path, formats):
    """By default a job's block is only in the full log; MNISTBENCH_CONSOLE=detail prints it, and
    so does the plugin's own flag where the plugin is installed (run.sh installs it)."""
    config = {"experiments": {"one": [{}]}, "data": {"mnist": {"local_path": str(formats["npz"])}}}
    asks = {
        "brief": ((), {}),
        "variable": ((), {"MNISTBENCH_CONSOLE": "detail"}),
        "flag": (("--logger", "mnistbench", "--logger-mnistbench-detail"), {}),
    }
    outputs = {}
    for name, (flags, env) in asks.items():
        work = tmp_path / name
        work.mkdir()
        result = snakemake(work, config, "--cores", "1", "resources/mnist.npz", *flags, env=env)
        outputs[name] = result.stdout + result.stderr
        (full_log,) = (work / ".snakemake/log").glob("*.snakemake.log")
        assert "localrule download:" in full_log.read_text()
    assert "localrule download:" not in outputs["brief"] and "steps (100%) done" not in outputs["brief"]
    assert "Complete log(s): " in outputs["brief"]
    for name in ("variable", "flag"):
        assert "localrule download:" in outputs[name] and "steps (100%) done" in outputs[name], name
        assert "could not be loaded" not in outputs[name]
