"""mlperf.log: a run's timeline in MLPerf Training's log format, and its compliance check.

The log is written after the run from the timeline it recorded (unix times), so no file I/O falls
in the timed phases, with mlperf-logging's own logger (mllog). check_log runs mlperf-logging's
compliance checker with the training common rules of RULESET plus mnist's rules
(mlperf_rules/mnist.yaml, which explains how it includes them): submission_benchmark is "mnist",
and a run whose run_stop says success reached its target. MLPerf fixes each benchmark's target in
its rules; ours varies per run, so a run with a target logs it as a `target_accuracy` event (a key
MLPerf's rules do not know, which the checker allows) and a run without one logs none.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from mlperf_logging.mllog import constants as C
from mlperf_logging.mllog.mllog import MLLogger

BENCHMARK = "mnist"
TARGET_ACCURACY = "target_accuracy"
RULESET = "6.1.0"  # the newest training ruleset of mlperf-logging 4.1.68 (and its checker's default)
RULES = Path(__file__).with_name("mlperf_rules") / "mnist.yaml"

# Keras dtype policy (its compute dtype) -> MLPerf's precision names. "fp32" means float32 data: the
# TF32 math that GPUs may use for float32 matmuls is not visible from the policy.
PRECISIONS = {"float16": "fp16", "bfloat16": "bfloat16", "float32": "fp32", "float64": "fp64"}

# mllog's shared logger (mllog.mllogger) prints to stdout; each log gets its own MLLogger on this
# logger instead, with a handler for that log only, under a lock: the logger is process-wide.
_logger = logging.getLogger("mnistbench.results.mlperf.log")
_logger.propagate = False  # not into the root logger's handlers (the run's log, stderr)
_logger.setLevel(logging.INFO)
_lock = threading.Lock()
# mllog adds the calling file to each line; this prefix is trimmed from it (mllog takes a regex).
_ROOT = re.escape(str(Path(os.path.abspath(__file__)).parents[2]))  # the workflow's folder


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def write_log(path, timeline: dict, submission: dict) -> None:
    """Write `timeline` (see epochs.timeline) as MLPerf log lines to `path`, atomically. Optional
    timeline keys: dtype_policy (Keras's, default float32), config_filename (default config.yaml)."""
    if timeline["status"] not in (C.SUCCESS, C.ABORTED):
        raise ValueError(f"status must be success or aborted, not {timeline['status']!r}")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    with _lock:
        _logger.addHandler(handler)
        try:
            _log_events(MLLogger(_logger, root_dir=_ROOT), timeline, submission)
        finally:
            _logger.removeHandler(handler)
    text = buffer.getvalue()
    # mllog logs a value it cannot encode as a plain error line, dropping the event: refuse that log.
    bad = [line for line in text.splitlines() if not line.startswith(":::MLLOG ")]
    if bad:
        raise ValueError(f"mllog could not write {path}: {bad[0]}")
    _replace(path, text)


def _replace(path, text: str) -> None:
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


# The first words of the mlperf.log of a run that has none (see write_run_log).
NO_LOG = "# No MLPerf log"


def write_run_log(metrics_path, path, org: str) -> None:
    """mlperf.log of one run from its metrics.json; a run that did not end ok was aborted.

    A run that never evaluated the test set (it failed or crashed: its timeline is lost) gets no
    MLPerf log, since MLPerf's rules require an eval_accuracy and the checker fails a log without
    one: `path` holds one comment line saying why instead (the rule's output, and what a reader
    of the folder finds), and the run's train.log says what went wrong."""
    metrics = json.loads(Path(metrics_path).read_text())
    timeline = metrics.get("timeline") or {"epochs": []}
    if not any(epoch.get("eval_accuracy") is not None for epoch in timeline["epochs"]):
        _replace(
            path,
            f"{NO_LOG}: run {metrics['run']} ended {metrics['status']} before any evaluation of the "
            "test set, and MLPerf's rules require an eval_accuracy; its train.log says why.\n",
        )
        return
    if metrics["status"] != "ok":
        timeline = {**timeline, "status": C.ABORTED}
    device = metrics.get("gpu_name") or metrics.get("cpu_model") or "CPU"
    write_log(path, timeline, {"org": org, "platform": f"{metrics['host']['hostname']}, {device}"})


def _log_events(ml: MLLogger, t: dict, submission: dict) -> None:
    init = _ms(t["init_start"])
    batch = int(t["global_batch_size"])
    policy = t.get("dtype_policy", "float32")
    precision = PRECISIONS[policy.removeprefix("mixed_")]
    facts = {
        C.SUBMISSION_BENCHMARK: BENCHMARK,
        C.SUBMISSION_DIVISION: C.OPEN,
        C.SUBMISSION_STATUS: C.RESEARCH,
        C.SUBMISSION_ORG: submission["org"],
        C.SUBMISSION_PLATFORM: submission["platform"],
        C.GLOBAL_BATCH_SIZE: batch,
        C.TRAIN_SAMPLES: int(t["train_samples"]),
        C.EVAL_SAMPLES: int(t["eval_samples"]),
        C.SEED: int(t["seed"]),
        C.OPT_BASE_LR: float(t["opt_base_learning_rate"]),
        # Required by the closed division's rules only; true here: Keras's fit takes one optimizer
        # step per batch, on one device.
        C.GRADIENT_ACCUMULATION_STEPS: 1,
        # The 6.1 rules' disclosure keys. A run is one process on one device: nothing is split or
        # communicated, so each parallelism is 1 and the micro batch is the whole batch. The models
        # have no attention and no communication: those precisions are the compute precision.
        C.MICRO_BATCH_SIZE: batch,
        C.TENSOR_PARALLELISM: 1,
        C.PIPELINE_PARALLELISM: 1,
        C.CONTEXT_PARALLELISM: 1,
        C.EXPERT_PARALLELISM: 1,
        C.LOWEST_NUMERICAL_PRECISION_IN_LINEAR: precision,
        C.LOWEST_NUMERICAL_PRECISION_IN_ATTN: precision,
        C.LOWEST_NUMERICAL_PRECISION_IN_COMM: precision,
        C.CONFIG_FILENAME: t.get("config_filename", "config.yaml"),  # the workflow's settings
    }
    if t.get("target_accuracy") is not None:
        facts[TARGET_ACCURACY] = float(t["target_accuracy"])

    ml.event(C.CACHE_CLEAR, True, time_ms=init)
    ml.start(C.INIT_START, time_ms=init)
    for key, value in facts.items():
        ml.event(key, value, time_ms=init)
    ml.end(C.INIT_STOP, time_ms=_ms(t["init_stop"]))
    ml.start(C.RUN_START, time_ms=_ms(t["run_start"]))
    for epoch in t["epochs"]:
        number = {C.EPOCH_NUM: int(epoch["epoch"])}  # the epoch's number, from 1, as ResNet logs it
        ml.start(C.EPOCH_START, metadata=number, time_ms=_ms(epoch["start"]))
        if epoch.get("stop") is not None:  # an epoch cut short has none; the rules allow that
            ml.end(C.EPOCH_STOP, metadata=number, time_ms=_ms(epoch["stop"]))
        if epoch.get("eval_start") is not None:
            stop = _ms(epoch["eval_stop"])
            ml.start(C.EVAL_START, metadata=number, time_ms=_ms(epoch["eval_start"]))
            if epoch.get("eval_accuracy") is not None:
                ml.event(C.EVAL_ACCURACY, float(epoch["eval_accuracy"]), metadata=number, time_ms=stop)
            ml.end(C.EVAL_STOP, metadata=number, time_ms=stop)
    ml.end(C.RUN_STOP, metadata={C.STATUS: t["status"]}, time_ms=_ms(t["run_stop"]))


def check_log(path, ruleset: str = RULESET) -> tuple[bool, str]:
    """Run mlperf-logging's compliance checker with mnist's rules on `path`: (passed, its output).
    A run that has no log (NO_LOG) does not pass, and the output is the file's reason why."""
    text = Path(path).read_text()
    if text.startswith(NO_LOG):
        return False, text
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training"]
        command += ["--ruleset", ruleset, "--config", str(RULES.resolve())]
        # It also writes its output to a file, by default in the working directory.
        command += ["--log_output", os.path.join(scratch, "checker.log"), str(Path(path).resolve())]
        result = subprocess.run(
            command, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
        )
    # It exits 1 after logging FAILED, non-zero too if it crashes, and logs SUCCESS last on a pass.
    passed = result.returncode == 0 and result.stdout.rstrip().endswith("SUCCESS")
    return passed, result.stdout
