"""Timings you can trust: repeats, isolation, overlap, the per-setting spread, and the lesson's
StopWatch format read back by cloudmesh-common's own parser."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from cloudmesh.common.StopWatch import StopWatch
from conftest import DOT_TEST, copy_results, snakemake

from mnistbench.measures import machine
from mnistbench.results import summary
from mnistbench.stopwatch import Stopwatch, benchmark_block


def test_overlap_counts_the_union_of_other_runs_train_phases_on_the_same_host():
    runs = pd.DataFrame(
        {
            "host": ["a", "a", "a", "b"],
            "train_started_unix": [100.0, 105.0, 108.0, 100.0],
            "train_finished_unix": [110.0, 112.0, 109.0, 110.0],
        }
    )
    overlap = summary.overlap_seconds(runs)
    # run 0 overlaps [105, 110] and [108, 109]: their union is 5 s; run 3 is alone on host b.
    assert list(overlap) == [5.0, 5.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "seconds, noisy",
    [
        ([10.0], False),  # one repeat has no spread
        ([10.0, 10.2, 9.9], False),
        ([10.0, 12.5, 9.0], True),  # standard deviation 17% of the mean
        ([10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 25.0], True),  # one repeat far out
    ],
)
def test_noisy_follows_pyperfs_rule(seconds, noisy):
    assert summary.is_noisy(pd.Series(seconds)) is noisy


def test_stopwatch_block_reads_back_with_cloudmeshs_own_parser(tmp_path):
    watch = Stopwatch()
    for phase, seconds in (("data-load", 0.0123), ("compile", 0.4), ("train", 5.09), ("test", 0.3)):
        watch.record(phase, seconds)
    log = tmp_path / "train.log"
    log.write_text(
        "2026-01-01 INFO epoch 1: loss 0.3\n"
        + benchmark_block(watch, "lesson", machine.stopwatch_attributes())
    )
    loaded = StopWatch.load(str(log), label=[], attributes=["timer", "status", "time", "tag", "uname.node"])
    assert [row[:4] for row in loaded["data"]] == [
        ["data-load", "ok", "0.012", "lesson"],
        ["compile", "ok", "0.400", "lesson"],
        ["train", "ok", "5.090", "lesson"],
        ["test", "ok", "0.300", "lesson"],
    ]


@pytest.mark.slow
def test_the_console_says_the_plan_each_run_and_the_summary_in_a_few_lines(dot_test_run):
    """Not a terminal here: plain lines. Snakemake's per-job blocks stay in the full log."""
    work, output = dot_test_run
    lines = output.splitlines()
    assert len(lines) <= 40, output  # 6 runs (Snakemake alone prints hundreds)
    assert re.search(
        r"^Training 6 run\(s\) \(0 already done\): about .+, estimated from the grid's cost", output, re.M
    )
    finished = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in finished] == [f"[{k}/6" for k in range(1, 7)], output
    assert all(re.search(r": ok, test accuracy [\d.]+%, train phase [\d.]+ s; ", line) for line in finished)
    assert finished[-1].endswith("all trained") and "left" in finished[0]
    assert "(repeat 2)" in output and "rule train" not in output and "steps (" not in output
    assert "oneDNN" not in output and "absl" not in output  # frameworks' start-up lines: job logs
    # The ceiling probe ran (the other tests' grids leave it out) and kept TensorFlow's lines apart.
    ceiling = json.loads((work / "results/ceiling/cpu_tensorflow_float32_t1.json").read_text())
    assert ceiling["matmul_flops_per_s"] > 0 and ceiling["copy_bytes_per_s"] > 0, ceiling
    assert "oneDNN" in (work / "results/logs/ceiling/cpu_tensorflow_float32_t1.framework.log").read_text()
    summary = output.split("\nDone in ", 1)[1]
    assert re.match(r"[\d a-z]+: 6 ok \(of 6 runs\)\.\nKey results:\n  - ", summary), summary
    assert f"Report: {(work / 'results/report.html').resolve()}" in summary and "*" not in summary
    full_log = re.search(r"^Complete log\(s\): (\S+)$", summary, re.M)[1]  # the detail is kept there
    assert (
        Path(full_log).parent == (work / ".snakemake/log").resolve()
        and Path(full_log).read_text().count("rule train:") == 6
    )


@pytest.mark.slow
def test_repeats_are_isolated_identical_and_summarised_per_setting(dot_test_run):
    work, _ = dot_test_run
    runs = pd.read_csv(work / "results/summary/runs.csv")
    settings = pd.read_csv(work / "results/summary/settings.csv")
    assert set(runs["status"]) == {"ok"} and set(runs["repeat"]) == {1, 2}
    assert runs["overlap_seconds"].eq(0).all()  # train.isolate (the default): one at a time
    assert runs["peak_rss_mb"].gt(100).all() and runs["code_version"].notna().all()
    assert runs["load_average_start"].notna().all()
    # Same seed, same numbers: the repeats of a setting agree exactly.
    by_setting = runs.groupby(["model", "batch_size", "epochs"])
    assert (by_setting["test_accuracy"].nunique() == 1).all() and (
        by_setting["test_loss"].nunique() == 1
    ).all()
    assert settings["identical_results"].all() and not settings["overlapped"].any()
    # settings.csv agrees with runs.csv.
    assert len(settings) == by_setting.ngroups and settings["n"].sum() == len(runs)
    for _, row in settings.iterrows():
        mine = runs[runs["run"].isin(row["runs"].split(";"))]
        assert len(mine) == row["n"]
        assert row["time_train_median"] == pytest.approx(mine["time_train"].median())
        assert row["time_train_min"] == pytest.approx(mine["time_train"].min())
        assert row["time_train_q3"] == pytest.approx(mine["time_train"].quantile(0.75))
        assert row["test_accuracy_median"] == pytest.approx(mine["test_accuracy"].median())
    # Warm-up kept apart: the steady epoch leaves out the first (two-epoch runs have one).
    two_epochs = runs[runs["epochs"] == 2]
    assert two_epochs["time_epoch_steady"].notna().all() and two_epochs["time_first_epoch"].notna().all()
    assert runs.loc[runs["epochs"] == 1, "time_epoch_steady"].isna().all()


@pytest.mark.slow
def test_train_log_ends_with_the_lessons_stopwatch_block_and_keeps_framework_noise_apart(dot_test_run):
    work, _ = dot_test_run
    runs = pd.read_csv(work / "results/summary/runs.csv")
    for run in runs["run"]:
        folder = work / "results/runs" / run
        log = folder / "train.log"
        assert "cuInit" not in log.read_text() and "absl" not in log.read_text()
        loaded = StopWatch.load(str(log), label=[], attributes=["timer", "status", "time", "tag"])
        times = {timer: float(time) for timer, _, time, tag, *_ in loaded["data"] if tag == run}
        timings = pd.read_csv(folder / "timings.csv").set_index("phase")["seconds"]
        assert set(times) == {"data-load", "compile", "train", "eval", "test"}
        for phase, seconds in times.items():
            assert seconds == pytest.approx(timings[phase], abs=0.0005)
        assert (folder / "framework.log").exists()


@pytest.mark.slow
def test_snakemakes_own_report_holds_what_a_reader_opens_and_stays_small(dot_test_run, tmp_path):
    """The finding: rule download marked resources/mnist.npz for `snakemake --report`, which
    embedded the 55 MB dataset as text (an 80 MB page). Only tables, pages and provenance now."""
    work, _ = dot_test_run
    page = tmp_path / "snakemake-report.html"
    snakemake(work, None, *DOT_TEST, "--report", str(page))
    text = page.read_text()
    assert "resources/mnist.npz" not in text and "resources/mnist.json" in text
    embedded = re.findall(r"data:([a-z+/-]+);", text)
    assert "text/plain" not in embedded and embedded.count("text/html") == 1  # results/report.html
    assert embedded.count("text/csv") >= 6  # the summary tables
    assert page.stat().st_size < 10 * 2**20, page.stat().st_size  # most of it the report's figures


@pytest.mark.slow
def test_raising_repeats_trains_only_the_new_repeats(dot_test_run, tmp_path):
    work = copy_results(dot_test_run[0], tmp_path / "dot-test")
    config = work / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 1, repeats: 2}", "epochs: 1, repeats: 3}"))
    plan = snakemake(work, None, *DOT_TEST, "-n", "--quiet", "rules").stdout
    assert re.search(r"^train\s+1$", plan, re.M), plan
