"""Per epoch of a run: its history row, its evaluation on the test set, the two clocks, the stop
at a target; then the evaluations taken out of the train phase, and the timeline that mlperf.log
is written from."""

from __future__ import annotations

import logging
import math
import time

from mnistbench.grid import Run
from mnistbench.stopwatch import Stopwatch
from mnistbench.training.pipeline import Tested

log = logging.getLogger("mnistbench")


class EpochLog:
    """Per epoch: a history row, the test set's evaluation (every epoch, or only after the last
    when `every_epoch` is off) and the timeline that mlperf.log is written from. Stops training
    at the first epoch whose evaluation reaches `target`, as MLPerf's run_stop does, or whose
    loss is not finite."""

    def __init__(self, evaluate, n_train: int, every_epoch: bool, target: float | None):
        self.evaluate, self.n_train, self.every_epoch, self.target = evaluate, n_train, every_epoch, target
        self.rows: list[dict] = []
        self.epochs: list[dict] = []  # unix times of each epoch and its evaluation
        self.tested: Tested | None = None  # the last evaluation
        self.eval_seconds = 0.0

    def start(self) -> None:
        """The train phase starts: both clocks start."""
        self.clock_start = time.perf_counter()

    def callback(self, keras):
        log_epoch = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                log_epoch.epoch_started = time.perf_counter()
                log_epoch.epochs.append({"epoch": epoch + 1, "start": time.time()})

            def on_epoch_end(self, epoch, logs=None):
                if not log_epoch.epoch_end(logs):
                    self.model.stop_training = True

        return Callback()

    def epoch_end(self, logs) -> bool:
        """Record the epoch that ended; False when training must stop."""
        now = time.perf_counter()
        seconds = now - self.epoch_started
        self.epochs[-1]["stop"] = time.time()
        row = {
            "epoch": len(self.rows) + 1,
            "loss": float(logs["loss"]),
            "accuracy": float(logs["accuracy"]),
            "seconds": seconds,
            "samples_per_second": self.n_train / seconds,
            "train_clock": now - self.clock_start - self.eval_seconds,
        }
        self.rows.append(row)
        finite = math.isfinite(row["loss"])  # per epoch: Keras's TerminateOnNaN costs much per batch
        if finite and self.every_epoch:
            self.evaluate_now()
        log.info(
            "epoch %d: loss %.4f, accuracy %.4f, %.2f s, test accuracy %s",
            row["epoch"],
            row["loss"],
            row["accuracy"],
            seconds,
            row.get("test_accuracy"),
        )
        return finite and not self.reached_target()

    def evaluate_now(self) -> None:
        """Evaluate the model as it is now, for the last epoch's row."""
        started, start = time.time(), time.perf_counter()
        self.tested = self.evaluate()
        seconds = time.perf_counter() - start
        self.eval_seconds += seconds
        row = self.rows[-1]
        row.update(test_accuracy=self.tested.accuracy, test_loss=self.tested.loss, eval_seconds=seconds)
        row["wall_clock"] = row["train_clock"] + self.eval_seconds
        self.epochs[-1].update(
            eval_start=started, eval_stop=started + seconds, eval_accuracy=self.tested.accuracy
        )

    def reached_target(self) -> bool:
        return self.target is not None and self.tested is not None and self.tested.accuracy >= self.target

    def last_evaluated(self) -> bool:
        return bool(self.rows) and "test_accuracy" in self.rows[-1]


def split_evaluations(epoch_log: EpochLog, watch: Stopwatch) -> Tested:
    """Take the evaluations out of the train phase: the last one is the test phase, the others
    the eval phase (0 s when there were none). Where the last epoch was not evaluated (no
    evaluation every epoch, or a loss that turned NaN), the test phase evaluates the model."""
    during_fit = epoch_log.eval_seconds
    watch.record("train", watch.seconds["train"] - during_fit, watch.started["train"])
    evaluated = [epoch for epoch in epoch_log.epochs if "eval_start" in epoch]
    last = epoch_log.rows[-1]["eval_seconds"] if epoch_log.last_evaluated() else 0.0
    watch.record("eval", during_fit - last, evaluated[0]["eval_start"] if evaluated else time.time())
    if epoch_log.last_evaluated():
        watch.record("test", last, evaluated[-1]["eval_start"])
    else:
        with watch.time("test"):
            epoch_log.evaluate_now()
    return epoch_log.tested


def timeline(epoch_log: EpochLog, watch: Stopwatch, run: Run, n_train: int, n_eval: int) -> dict:
    """What mlperf.log is written from (mnistbench/results/mlperf.py): unix times of the run's events."""
    process_start = watch.started["startup"]
    target_missed = run.target_accuracy is not None and not epoch_log.reached_target()
    return {
        "init_start": process_start,
        "init_stop": watch.started["train"],
        "run_start": watch.started["train"],
        "run_stop": watch.started["test"] + watch.seconds["test"],
        "status": "aborted" if target_missed else "success",
        "epochs": epoch_log.epochs,
        "global_batch_size": run.batch_size,
        "train_samples": n_train,
        "eval_samples": n_eval,
        "seed": run.seed,
        "target_accuracy": run.target_accuracy,
    }
