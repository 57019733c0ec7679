"""Aggregation of every run's outputs into the summary tables the report reads."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from mnistbench import machine
from mnistbench.files import write_csv
from mnistbench.grid import SETTINGS
from mnistbench.stopwatch import PHASES, phase_column

log = logging.getLogger("mnistbench")


def _run_row(metrics: dict, benchmark: pd.DataFrame, experiments: list[str]) -> dict:
    params = metrics["params"]
    row = {"run": metrics["run"], "experiments": ";".join(experiments)}
    row.update({key: params.get(key) for key in SETTINGS})
    row.update(
        status=metrics["status"],
        error=metrics.get("error", ""),
        test_accuracy=metrics.get("test_accuracy"),
        test_loss=metrics.get("test_loss"),
        epochs_completed=metrics.get("epochs_completed", 0),
    )
    for phase in PHASES:
        row[phase_column(phase)] = metrics["timings"].get(phase)
    train_seconds = metrics["timings"].get("train")
    row["time_job"] = float(benchmark["s"].iloc[0]) if len(benchmark) else None
    row["train_samples_per_second"] = (
        metrics.get("n_train", 0) * metrics.get("epochs_completed", 0) / train_seconds
        if train_seconds
        else None
    )
    row["peak_memory_mb"] = float(benchmark["max_rss"].iloc[0]) if len(benchmark) else None
    row["cpu_seconds"] = float(benchmark["cpu_time"].iloc[0]) if len(benchmark) else None
    row.update(
        threads=metrics.get("threads"),
        cpus=" ".join(map(str, metrics.get("cpus") or [])),
        device=metrics.get("device"),
        steps_per_execution=metrics.get("steps_per_execution"),
        jit_compile=metrics.get("jit_compile"),
        host=metrics["host"]["hostname"],
        slurm_job_id=metrics["host"].get("slurm_job_id"),
        started_at=metrics.get("started_at"),
    )
    return row


def aggregate(inputs: dict, outputs: dict, experiments: dict[str, list[str]]) -> pd.DataFrame:
    """Write runs.csv (one row per run), timings.csv and history.csv (long), machine.csv, datasets.csv."""
    rows, timings, histories, hosts = [], [], [], {}
    for metrics_path, benchmark_path, history_path in zip(
        inputs["metrics"], inputs["benchmark"], inputs["history"], strict=True
    ):
        metrics = json.loads(Path(metrics_path).read_text())
        benchmark = pd.read_csv(benchmark_path, sep="\t")
        rows.append(_run_row(metrics, benchmark, experiments.get(metrics["run"], [])))
        timings += [{"run": metrics["run"], "phase": p, "seconds": s} for p, s in metrics["timings"].items()]
        history = pd.read_csv(history_path)
        history.insert(0, "run", metrics["run"])
        histories.append(history)
        hosts.setdefault(metrics["host"]["hostname"], metrics["host"])

    runs = pd.DataFrame(rows).sort_values("test_accuracy", ascending=False, na_position="last")
    write_csv(outputs["runs"], runs)
    write_csv(outputs["timings"], pd.DataFrame(timings, columns=["run", "phase", "seconds"]))
    write_csv(outputs["history"], pd.concat(histories, ignore_index=True) if histories else pd.DataFrame())

    here = machine.describe()
    machines = [here] + [info for name, info in hosts.items() if name != here["hostname"]]
    write_csv(outputs["machine"], pd.DataFrame(machines))

    datasets = []
    for path in inputs["provenance"]:
        provenance = json.loads(Path(path).read_text())
        datasets.append(
            {
                key: provenance.get(key)
                for key in ("dataset", "source", "address", "content_sha256", "fetched_at")
            }
        )
    write_csv(outputs["datasets"], pd.DataFrame(datasets))
    log.info("aggregated %d runs: %s", len(runs), runs["status"].value_counts().to_dict())
    return runs


def failed_runs(runs_csv) -> list[str]:
    """The runs of runs.csv whose status is "failed"."""
    runs = pd.read_csv(runs_csv)
    return list(runs.loc[runs["status"] == "failed", "run"])


def forget_runs(runs: list[str], runs_dir, runs_csv) -> None:
    """Make the next call of the workflow train `runs` again.

    A failed run still writes its outputs, so that the report can show it. Removing its
    metrics.json (the file that marks completion) and dating runs.csv back makes Snakemake
    train it again: Snakemake does not look for a missing intermediate file behind an
    up-to-date output, so the summary must look stale too.
    """
    for run in runs:
        Path(runs_dir, run, "metrics.json").unlink(missing_ok=True)
    if runs:
        os.utime(runs_csv, (0, 0))
