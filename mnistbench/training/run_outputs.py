"""What a run leaves behind, whatever its outcome: model, history, timings, predictions, and
metrics.json last (its presence marks the run complete)."""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mnistbench.files import atomic_write, save_npz, write_csv, write_json
from mnistbench.grid import Run
from mnistbench.locks import TOKEN_VARIABLE
from mnistbench.measures import machine
from mnistbench.stopwatch import Stopwatch
from mnistbench.training.cpus import usable_cpus
from mnistbench.training.pipeline import Tested

# Per epoch: the train step's figures, then its evaluation on the test set (the held-out set, as
# MLPerf evaluates) and two clocks at the end of its evaluation: train_clock (train-phase seconds,
# evaluations off the clock, as AlgoPerf times) and wall_clock (evaluations on it, as MLPerf).
HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "seconds",
    "samples_per_second",
    "test_accuracy",
    "test_loss",
    "eval_seconds",
    "train_clock",
    "wall_clock",
]


@dataclass
class Outcome:
    """What a run produced: its status and, when it got that far, model, history and test."""

    status: str
    model: object = None
    history: list[dict] = field(default_factory=list)
    test: Tested | None = None
    facts: dict = field(default_factory=dict)  # fast path, device, threads: for metrics.json
    error: str | None = None


def _save_model(model, path: str) -> None:
    if model is None:  # a failed run leaves an empty file, its status says why
        Path(path).write_bytes(b"")
        return
    model.save(path)


def _predictions(tested: Tested | None) -> dict[str, np.ndarray]:
    if tested is None:
        # Nothing predicted, over no known classes: evaluate writes empty tables for it.
        empty = np.zeros(0, np.uint8)
        return {"y_true": empty, "y_pred": empty, "probabilities": np.zeros((0, 0), np.float32)}
    return {"y_true": tested.y_true, "y_pred": tested.predicted, "probabilities": tested.probabilities}


def peak_rss_mb() -> float:
    """This process's peak resident memory, exact (sampling from outside misses short peaks)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def write_outputs(
    run: Run,
    name: str,
    repeat: int,
    outputs: dict,
    outcome: Outcome,
    watch: Stopwatch,
    threads: int,
    started_unix: float,
    load_at_start: dict,
) -> dict:
    """Write every output of a run, whatever its outcome; metrics.json last."""
    atomic_write(outputs["model"], lambda temporary: _save_model(outcome.model, temporary))
    write_csv(outputs["history"], pd.DataFrame(outcome.history, columns=HISTORY_COLUMNS))
    write_csv(outputs["timings"], watch.frame())
    save_npz(outputs["predictions"], _predictions(outcome.test))
    metrics = {
        "run": name,
        "repeat": repeat,
        "call": os.environ.get(TOKEN_VARIABLE),  # which snakemake call trained it (mnistbench.locks)
        "status": outcome.status,
        **({"error": outcome.error} if outcome.error else {}),
        **({"test_accuracy": outcome.test.accuracy, "test_loss": outcome.test.loss} if outcome.test else {}),
        "epochs_completed": len(outcome.history),
        **outcome.facts,
        "params": run.settings(),
        "timings": watch.seconds,
        "phase_started_unix": watch.started,
        "threads": threads,
        "cpus": outcome.facts.get("cpus", usable_cpus()),
        "load_at_start": load_at_start,
        "load_at_end": machine.load_sample(),
        "code_version": machine.code_version(),
        "started_at": datetime.fromtimestamp(started_unix, UTC).isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "started_unix": started_unix,
        "finished_unix": time.time(),
        "host": machine.host(),
        "versions": machine.versions(),
    }
    write_json(outputs["metrics"], metrics)
    return metrics
