"""What a person reads on the console during a call: one plan line before training, one line
per finished training run, and a closing summary.

The lines are plain text. rules/common.smk builds the plan and the summary; the logger plugin
(snakemake_logger_plugin_mnistbench) prints them, and the per-run lines, in place of
Snakemake's per-job blocks, which stay in the full log in .snakemake/log/.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pandas as pd

from mnistbench.grid import Measurement

# Seconds a training job spends outside its train phase on this kind of machine (process start,
# framework import, data load, compile, evaluation): what the cost model adds to each run. The
# .test grid's jobs took 5.4-6.5 s here with train phases under 0.3 s.
JOB_OVERHEAD_S = 7.0
# A run with no metrics.json: not asked for by this call, or its job failed.
NOT_RUN = "not run"
# The closing summary quotes this many of the report's key results.
KEY_RESULTS_SHOWN = 3


def duration(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 5 min': rounded to what a person plans with."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if minutes < 10 and seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def cost_model_seconds(job: Measurement) -> float:
    return JOB_OVERHEAD_S + job.run.expected_train_seconds()


def past_job_seconds(runs_csv: Path, host: str | None = None) -> dict[str, float]:
    """{run: its whole job's seconds} of the runs that ended ok on this machine, from a previous
    call's results/summary/runs.csv (none when there is no such table)."""
    if not Path(runs_csv).is_file():
        return {}
    runs = pd.read_csv(runs_csv)
    if not {"run", "status", "host", "time_job"} <= set(runs.columns):
        return {}
    mine = runs[(runs["status"] == "ok") & (runs["host"] == (host or socket.gethostname()))]
    mine = mine.dropna(subset=["time_job"])
    return dict(zip(mine["run"], mine["time_job"].astype(float), strict=True))


def estimate(jobs: dict[str, Measurement], to_train: list[str], past: dict[str, float]) -> tuple[dict, str]:
    """Seconds per run to train and where they come from. A run measured here before takes its
    past time; the others take the cost model scaled by how past runs of this grid compared
    with it (the model alone where none did)."""
    known = [name for name in past if name in jobs]
    if not known:
        source = "the grid's cost model (no past results on this machine yet; rough)"
        return {name: cost_model_seconds(jobs[name]) for name in to_train}, source
    ratios = pd.Series([past[name] / cost_model_seconds(jobs[name]) for name in known])
    scale = float(ratios.median())
    seconds = {name: past.get(name, scale * cost_model_seconds(jobs[name])) for name in to_train}
    return seconds, f"this machine's past results ({len(known)} runs in results/summary/runs.csv)"


def plan(jobs: dict[str, Measurement], labels: dict[str, str], to_train: list[str], done: int, past):
    """The plan line and what the per-run lines need: each run's label and estimated seconds."""
    seconds, source = estimate(jobs, to_train, past)
    line = (
        f"Training {len(to_train)} run(s) ({done} already done): about {duration(sum(seconds.values()))}, "
        f"estimated from {source}."
    )
    runs = {name: {"label": labels[name], "seconds": seconds[name]} for name in to_train}
    return line, {"runs": runs, "started": time.time()}


def setting_labels(jobs: dict[str, Measurement]) -> dict[str, str]:
    """Each run's setting named by what varies in the grid (as in the report), and its repeat."""
    from mnistbench.report.plots.labels import setting_label

    names = sorted(jobs)
    table = pd.DataFrame([jobs[name].run.settings() for name in names], index=names)
    labels = setting_label(table)
    return {
        name: (labels[name] or name) + (f" (repeat {jobs[name].repeat})" if jobs[name].repeat > 1 else "")
        for name in names
    }


class Progress:
    """Counts the finished training runs of a plan, and says each one in a line."""

    def __init__(self, planned: dict):
        self.runs = planned["runs"]
        self.started = planned["started"]
        self.finished: list[str] = []

    def line(self, name: str, metrics: dict | None, now: float | None = None) -> str:
        if name not in self.finished:
            self.finished.append(name)
        run = self.runs.get(name, {"label": name, "seconds": 0.0})
        return (
            f"[{len(self.finished)}/{len(self.runs)}] {run['label']}: {outcome(metrics)}; "
            f"{self.left(now or time.time())}"
        )

    def left(self, now: float) -> str:
        """The estimate of the runs still to train, scaled by how the finished ones compared."""
        remaining = [run["seconds"] for name, run in self.runs.items() if name not in self.finished]
        if not remaining:
            return "all trained"
        expected_so_far = sum(self.runs[name]["seconds"] for name in self.finished if name in self.runs)
        scale = (now - self.started) / expected_so_far if expected_so_far > 0 else 1.0
        return f"about {duration(scale * sum(remaining))} left"


def outcome(metrics: dict | None) -> str:
    if metrics is None:
        return "job failed (no metrics.json; see the log above)"
    parts = [str(metrics.get("status"))]
    if metrics.get("test_accuracy") is not None:
        parts.append(f"test accuracy {metrics['test_accuracy']:.2%}")
    train = (metrics.get("timings") or {}).get("train")
    if train is not None:
        parts.append(f"train phase {train:.2f} s")
    return ", ".join(parts)


def statuses(metrics_by_run: dict[str, dict | None]) -> dict[str, str]:
    """How each run ended, from its metrics.json (summary.runs_metrics; NOT_RUN where there is none)."""
    return {
        name: NOT_RUN if metrics is None else str(metrics.get("status"))
        for name, metrics in metrics_by_run.items()
    }


def closing_lines(
    ended: dict[str, str], elapsed: float, settings_csv: Path | None, outputs: list[Path]
) -> list[str]:
    """The call's end: how the runs ended (rules/common.smk names those that did not end ok), the
    time it took, the report's first key results and where the report is."""
    counts = pd.Series([status for status in ended.values() if status != NOT_RUN], dtype=object)
    tally = ", ".join(f"{count} {status}" for status, count in counts.value_counts().items())
    lines = [f"Done in {duration(elapsed)}" + (f": {tally} (of {len(ended)} runs)." if tally else ".")]
    if settings_csv is not None and Path(settings_csv).is_file():
        from mnistbench.report.plots.key_results import key_results

        results = key_results(pd.read_csv(settings_csv))[:KEY_RESULTS_SHOWN]
        lines += ["Key results:", *(f"  - {plain_text(line)}" for line in results)]
    lines += [f"Report: {Path(path).resolve()}" for path in outputs if Path(path).is_file()]
    return lines


def plain_text(markdown: str) -> str:
    """A key result as the console shows it: without the report's bold marks."""
    return re.sub(r"\*\*(.+?)\*\*", r"\1", markdown)
