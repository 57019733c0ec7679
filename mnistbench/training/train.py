"""One training run in the lesson's steps: load, build and compile, fit, test, each timed.

Keras is imported only after `runtime.start_training_process` has pinned the CPUs and set the
backend and the thread pools: all must be fixed before the framework starts.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import traceback

import numpy as np
import psutil

from mnistbench import append_to_log, setup_logging
from mnistbench.grid import Run
from mnistbench.measures import machine, model_flops
from mnistbench.measures.energy import RaplMeter
from mnistbench.stopwatch import Stopwatch, benchmark_block
from mnistbench.training import devices
from mnistbench.training.compile_ahead import compile_ahead
from mnistbench.training.epochs import EpochLog, split_evaluations, timeline
from mnistbench.training.pipeline import Data, fit, load_data, predict_test_set
from mnistbench.training.run_outputs import Outcome, peak_rss_mb, write_outputs
from mnistbench.training.runtime import (
    device_name,
    frameworks_loaded,
    seed_everything,
    start_keras,
    start_training_process,
    threads_used,
)

log = logging.getLogger("mnistbench")

# Largest number of steps fused into one call of the compiled training loop (the fast path).
MAX_STEPS_PER_EXECUTION = 256


def choose_fast_path(run: Run, n_train: int, steps_per_execution: int, jit_compile) -> dict:
    """Per run: how many steps per compiled call, and whether to compile with XLA."""
    steps_per_epoch = math.ceil(n_train / run.batch_size)
    if steps_per_execution == 0:
        steps_per_execution = min(MAX_STEPS_PER_EXECUTION, steps_per_epoch)
    if run.backend == "torch":
        steps_per_execution = 1  # Keras on PyTorch runs one step per call (it refuses more)
    if run.backend == "jax":
        jit_compile = True  # without jit, JAX runs every op eagerly, many times slower
    elif jit_compile == "auto":
        # XLA on TensorFlow's CPU path and torch.compile on PyTorch's have not paid off where
        # measured (docs/measurements.md, docs/choices.md): their compile time outweighs what they
        # save; `true` forces them.
        jit_compile = False
    return {"steps_per_execution": int(steps_per_execution), "jit_compile": bool(jit_compile)}


def build_and_compile(run: Run, data: Data, fast: dict, network: dict | None = None):
    from mnistbench.training.models import build_model, build_optimizer

    model = build_model(run, data.shift, data.scale, data.x_train.shape[1:], data.n_classes, network)
    model.compile(
        optimizer=build_optimizer(run, network, math.ceil(len(data.x_train) / run.batch_size)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=fast["steps_per_execution"],
        jit_compile=fast["jit_compile"],
    )
    # Built here from one batch's shapes, not by the first fit, which draws a batch for it and
    # so a shuffle from the random generators: runs compiled ahead and runs compiled inside
    # their first epoch then train on the same batches. Private, but tested bit for bit.
    model._symbolic_build(data_batch=(data.x_train[:1], data.y_train[:1]))
    return model


def train_run(run: Run, data_path, threads: int, options: dict, watch: Stopwatch) -> Outcome:
    """Train and test one run; fills `watch` with the phase timings."""
    keras = start_keras(run.backend, threads)
    if run.device == "gpu":
        devices.require_gpu(keras)  # fails the run at once, in one line, where there is none
    keras.mixed_precision.set_global_policy(run.precision)
    deterministic = seed_everything(keras, run.seed)
    watch.record("startup", time.time() - psutil.Process().create_time(), psutil.Process().create_time())

    with watch.time("data-load"):
        data = load_data(data_path)
    fast = choose_fast_path(run, len(data.x_train), options["steps_per_execution"], run.jit_compile)
    ahead = options.get("compile_ahead", True)
    with watch.time("compile"):
        model = build_and_compile(run, data, fast, options.get("network"))
        if ahead:
            compile_ahead(
                keras,
                model,
                run,
                data,
                lambda fake: fit(keras, model, run, fake, epochs=1),
                lambda fake: predict_test_set(keras, model, fake),
            )
    # A run with a target is evaluated every epoch: it must know when it reached it.
    every_epoch = options.get("eval_every_epoch", True) or run.target_accuracy is not None
    epoch_log = EpochLog(
        lambda: predict_test_set(keras, model, data), len(data.x_train), every_epoch, run.target_accuracy
    )
    with devices.GpuSampler() as sampler, RaplMeter() as cpu_energy, watch.time("train"):
        epoch_log.start()
        fit(keras, model, run, data, run.epochs, callbacks=[epoch_log.callback(keras)])
    tested = split_evaluations(epoch_log, watch)
    history = epoch_log.rows
    compiled = compile_facts(ahead, history)

    finite = history and all(math.isfinite(row["loss"]) for row in history)
    finite = finite and math.isfinite(tested.loss) and np.isfinite(tested.probabilities).all()
    facts = {
        "n_train": len(data.x_train),
        "device": device_name(keras),
        "deterministic": deterministic,
        "threads_used": threads_used(keras, threads),
        "backend": keras.backend.backend(),
        "frameworks_loaded": frameworks_loaded(),
        "dtype_policy": keras.config.dtype_policy().name,
        **counted_flops(model),
        "eval_every_epoch": every_epoch,
        "reached_target": epoch_log.reached_target() if run.target_accuracy is not None else None,
        "timeline": {
            **timeline(epoch_log, watch, run, len(data.x_train), len(data.x_test)),
            # The optimizer's own rate, also where the setting leaves Keras's default.
            "opt_base_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
            "dtype_policy": keras.config.dtype_policy().name,
        },
        **fast,
        **compiled,
        **devices.gpu_facts(keras),
        "peak_gpu_memory_mb": devices.peak_gpu_memory_mb(keras),
        **sampler.summary(),
        **cpu_energy.summary(),
    }
    return Outcome("ok" if finite else "diverged", model, history, tested, facts)


def counted_flops(model) -> dict:
    """The FLOPs per image of the model as built (mnistbench/measures/model_flops.py): None, with the
    layers it does not know named, rather than a wrong count."""
    counted = model_flops.count(model)
    return {
        "flops_forward_per_image": counted.forward,
        "flops_train_per_image": counted.train,
        "flops_unknown_layers": ", ".join(sorted(set(counted.unknown))) or None,
    }


def compile_facts(ahead: bool, history: list[dict]) -> dict:
    """How the compile phase was measured. Ahead: the phase holds it (with the model's build).
    Otherwise compilation happened inside the first epoch: its excess over the steady epoch
    (the median of the later ones) is taken as the compile time, and left in the train phase."""
    if ahead:
        return {"compile_measured": "ahead", "compile_in_first_epoch_s": None}
    if len(history) < 2:
        return {
            "compile_measured": "inside the first epoch (one epoch: not separable)",
            "compile_in_first_epoch_s": None,
        }
    steady = float(np.median([row["seconds"] for row in history[1:]]))
    return {
        "compile_measured": "first epoch over the steady epoch, inside the train phase",
        "compile_in_first_epoch_s": max(0.0, history[0]["seconds"] - steady),
    }


def run_and_record(
    run: Run,
    name: str,
    data_path,
    outputs: dict,
    threads: int,
    options: dict,
    repeat: int = 1,
    facts: dict | None = None,
) -> dict:
    """Train one run and write all its outputs; metrics.json goes last, so it marks completion.

    A run that raises is recorded with status "failed" and its error rather than crashing the
    grid; the workflow reports it at the end (see rules/common.smk). The log ends with the
    phases in cloudmesh's StopWatch format, as the lesson prints them.
    """
    watch = Stopwatch()
    started_unix = time.time()
    load_at_start = machine.load_sample()
    try:
        outcome = train_run(run, data_path, threads, options, watch)
    except Exception as error:
        log.error("run %s failed: %s\n%s", name, error, traceback.format_exc())
        outcome = Outcome("failed", error=f"{type(error).__name__}: {error}")
    outcome.facts.update(facts or {}, peak_rss_mb=peak_rss_mb())
    log.info("run %s: %s, test accuracy %s", name, outcome.status, outcome.test and outcome.test.accuracy)
    status = "ok" if outcome.status == "ok" else "failed"
    append_to_log(benchmark_block(watch, name, machine.stopwatch_attributes(), status))
    return write_outputs(run, name, repeat, outputs, outcome, watch, threads, started_unix, load_at_start)


def main(spec_json: str) -> None:
    """The training process that mnistbench.training.supervise starts: one run, as a job of its own."""
    spec = json.loads(spec_json)
    run = Run.of(spec["run"])
    if run.device == "cpu":
        devices.hide_gpus(run.backend)  # before the framework starts: a CPU run is a CPU run
    facts = start_training_process(run.backend, spec["threads"], spec["options"]["pin_cpus"])
    setup_logging(spec["log"], framework_log=spec["framework_log"])
    if facts["why_unpinned"]:
        log.info("not pinned to CPUs of its own: %s", facts["why_unpinned"])
    facts.update(
        time_limit_s=spec.get("time_limit_s"),
        slurm_partition=os.environ.get("SLURM_JOB_PARTITION"),
        **devices.cpu_facts(),
    )
    run_and_record(
        run,
        spec["name"],
        spec["data"],
        spec["outputs"],
        spec["threads"],
        # A network of the user's own comes with what defines it (rules/common.smk run_settings).
        {**spec["options"], "network": spec["run"].get("network_definition")},
        spec["repeat"],
        facts,
    )
