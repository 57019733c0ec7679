"""One training run in the lesson's steps: load, build and compile, fit, test, each timed.

Keras is imported only after `start_training_process` has pinned the CPUs and set the backend
and the thread pools: all must be fixed before the framework starts.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import random
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from mnistbench import append_to_log, devices, machine, setup_logging
from mnistbench.cpus import claim_cpus, usable_cpus
from mnistbench.dataset import N_CLASSES
from mnistbench.files import atomic_write, save_npz, write_csv, write_json
from mnistbench.grid import Run
from mnistbench.locks import TOKEN_VARIABLE
from mnistbench.prepare import load_prepared
from mnistbench.stopwatch import Stopwatch, benchmark_block

log = logging.getLogger("mnistbench")

# Largest number of steps fused into one call of the compiled training loop (the fast path).
MAX_STEPS_PER_EXECUTION = 256
TEST_BATCH_SIZE = 1024  # predicting: large batches, few calls
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
INSTALL_HINT = ".venv/bin/pip install -r requirements-backends.txt"


@dataclass
class Data:
    """The prepared arrays, and the (shift, scale) that the model's first layer applies."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shift: float
    scale: float


@dataclass
class Tested:
    """The test phase's predictions and what they score."""

    y_true: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    accuracy: float
    loss: float


@dataclass
class Outcome:
    """What a run produced: its status and, when it got that far, model, history and test."""

    status: str
    model: object = None
    history: list[dict] = field(default_factory=list)
    test: Tested | None = None
    facts: dict = field(default_factory=dict)  # fast path, device, threads: for metrics.json
    error: str | None = None


def configure_runtime(backend: str, threads: int) -> None:
    """Fix the backend and every thread pool to `threads`, so parallel jobs never oversubscribe."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    # TensorFlow's own pools are sized in start_keras through tf.config.threading: its
    # TF_NUM_*_THREADS variables also starve the input pipeline.
    if backend == "torch":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on a GPU
    if backend == "jax":
        flags = ["--xla_gpu_deterministic_ops=true"]
        if threads == 1:
            flags.append("--xla_cpu_multi_thread_eigen=false")
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def start_training_process(backend: str, threads: int, pin_cpus: bool = True) -> dict:
    """All that a training process fixes before Keras is first imported: its CPUs, the
    backend and thread pools (threads inherit both), and the imports it keeps out. Returns
    how it was pinned, for metrics.json."""
    if pin_cpus:
        pinning = claim_cpus(threads)
        facts = {"pinned": pinning.pinned, "why_unpinned": pinning.why_unpinned}
    else:
        facts = {"pinned": False, "why_unpinned": "train.pin_cpus is false"}
    configure_runtime(backend, threads)
    skip_unused_imports(backend)
    return facts


FRAMEWORKS = ("tensorflow", "jax", "torch")


def skip_unused_imports(backend: str) -> None:
    """Keep out packages that Keras and the frameworks import when installed but a training job
    never uses: matplotlib.pyplot (for Keras's image gallery), and JAX and PyTorch unless the
    run's backend is one of them (TensorFlow imports JAX for tf.lite); each costs a share of a
    second at every start. Those imports are guarded by `except ImportError`, which a module
    set to None in sys.modules raises. TensorFlow cannot be kept out so: Keras takes its mere
    name in sys.modules as a sign that it is loaded; seed_everything avoids importing it.
    Not for notebooks: they plot.
    """
    sys.modules.setdefault("matplotlib.pyplot", None)
    for framework in ("jax", "torch"):
        if framework != backend:
            sys.modules.setdefault(framework, None)


def frameworks_loaded() -> list[str]:
    return [framework for framework in FRAMEWORKS if sys.modules.get(framework) is not None]


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
        # measured (README): their compile time outweighs what they save; `true` forces them.
        jit_compile = False
    return {"steps_per_execution": int(steps_per_execution), "jit_compile": bool(jit_compile)}


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


def _device(keras) -> str:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return "GPU " + tf.config.experimental.get_device_details(gpus[0]).get(
                "device_name", gpus[0].name
            )
    elif keras.backend.backend() == "jax":
        import jax

        return str(jax.devices()[0])
    elif keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return "GPU " + torch.cuda.get_device_name(0)
    return "CPU"


def _inter_op_threads(threads: int) -> int:
    """Pinned to CPUs of its own, one inter-op thread is fastest; unpinned, two (an idle second
    thread then keeps the pool awake). The README's measurements have the figures."""
    return 1 if len(usable_cpus()) <= threads else 2


def _threads_used(keras, threads: int) -> int:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads()
    if keras.backend.backend() == "torch":
        import torch

        return torch.get_num_threads()
    return threads  # XLA's CPU pool is fixed by XLA_FLAGS in configure_runtime


def start_keras(backend: str, threads: int):
    """Import Keras on `backend` (set by configure_runtime) and size the framework's thread pools."""
    if importlib.util.find_spec(backend) is None:
        raise RuntimeError(f"backend {backend} is not installed: {INSTALL_HINT}")
    if backend == "torch":
        import torch  # its pools must be sized before Keras runs a single op

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(_inter_op_threads(threads))
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(_inter_op_threads(threads))
    return keras


def seed_everything(keras, seed: int) -> bool:
    """Seed every generator and ask the backend for deterministic ops; returns whether it has them."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        # Same seed, same numbers: TensorFlow then raises rather than run an op that has no
        # deterministic kernel (some GPU ops), so a run never silently varies.
        tf.config.experimental.enable_op_determinism()
        return True
    # keras.utils.set_random_seed imports TensorFlow (seconds) on every backend, to seed
    # tf.data; JAX and PyTorch runs need only what it sets besides, set here the same way.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)  # raises, like TensorFlow, on an op without one
    # XLA on the CPU is deterministic; on a GPU, configure_runtime asked XLA for deterministic ops.
    return True


def load_data(path) -> Data:
    arrays, shift, scale = load_prepared(path)
    return Data(**arrays, shift=shift, scale=scale)


def build_and_compile(run: Run, data: Data, fast: dict):
    from mnistbench.models import build_model, build_optimizer

    model = build_model(run, data.shift, data.scale)
    model.compile(
        optimizer=build_optimizer(run),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=fast["steps_per_execution"],
        jit_compile=fast["jit_compile"],
    )
    return model


def shuffled_batches(data: Data, batch_size: int):
    """The batches Keras's own array pipeline makes on TensorFlow, in the same order, made in the
    training thread (`untuned`).

    Same permutation as Keras (`tf.random.shuffle` of all indices; with the seed set, Keras on
    TensorFlow replays that one order every epoch, and so does this), hence the same losses:
    tested.
    """
    import tensorflow as tf

    n = len(data.x_train)
    full = n // batch_size * batch_size
    x, y = tf.constant(data.x_train), tf.constant(data.y_train)

    def one_epoch_of_indices(_):
        order = tf.random.shuffle(tf.range(n, dtype=tf.int64))
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full], [-1, batch_size]))
        if full < n:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full:]))
        return batches

    dataset = tf.data.Dataset.range(1).flat_map(one_epoch_of_indices)
    dataset = dataset.map(lambda indices: (tf.gather(x, indices), tf.gather(y, indices)))
    return untuned(dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(n / batch_size))))


def untuned(dataset):
    """A tf.data pipeline without autotuning. Keras's own pipelines for arrays are tuned by a
    background thread that competes with the training step on a pinned CPU, and whose end each
    fit() and predict() waits for: 5 s at random at the end of the lesson's fit (TensorFlow
    2.21; README "Measured here")."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options)


def fit(keras, model, run: Run, data: Data, epoch_log: EpochLog) -> None:
    """Train; epoch_log records each epoch, evaluates, and stops early (target, NaN loss)."""
    if keras.backend.backend() == "tensorflow":
        inputs = {"x": shuffled_batches(data, run.batch_size), "shuffle": False}  # shuffled already
    else:
        inputs = {"x": data.x_train, "y": data.y_train, "batch_size": run.batch_size, "shuffle": True}
    model.fit(**inputs, epochs=run.epochs, verbose=0, callbacks=[epoch_log.callback(keras)])


def predict_test_set(keras, model, data: Data) -> Tested:
    """Predict the test set once; accuracy and loss come from those predictions."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        inputs = {"x": untuned(tf.data.Dataset.from_tensor_slices(data.x_test).batch(TEST_BATCH_SIZE))}
    else:
        inputs = {"x": data.x_test, "batch_size": TEST_BATCH_SIZE}
    probabilities = np.asarray(model.predict(**inputs, verbose=0), dtype=np.float32)
    predicted = probabilities.argmax(axis=1).astype(np.uint8)
    picked = probabilities[np.arange(len(data.y_test)), data.y_test]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    return Tested(data.y_test, probabilities, predicted, float(np.mean(predicted == data.y_test)), loss)


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
    with watch.time("compile"):
        model = build_and_compile(run, data, fast)
    # A run with a target is evaluated every epoch: it must know when it reached it.
    every_epoch = options.get("eval_every_epoch", True) or run.target_accuracy is not None
    epoch_log = EpochLog(
        lambda: predict_test_set(keras, model, data), len(data.x_train), every_epoch, run.target_accuracy
    )
    with devices.GpuSampler() as sampler, watch.time("train"):
        epoch_log.start()
        fit(keras, model, run, data, epoch_log)
    tested = split_evaluations(epoch_log, watch)
    history = epoch_log.rows

    finite = history and all(math.isfinite(row["loss"]) for row in history)
    finite = finite and math.isfinite(tested.loss) and np.isfinite(tested.probabilities).all()
    facts = {
        "n_train": len(data.x_train),
        "device": _device(keras),
        "deterministic": deterministic,
        "threads_used": _threads_used(keras, threads),
        "backend": keras.backend.backend(),
        "frameworks_loaded": frameworks_loaded(),
        "dtype_policy": keras.config.dtype_policy().name,
        "eval_every_epoch": every_epoch,
        "reached_target": epoch_log.reached_target() if run.target_accuracy is not None else None,
        "timeline": {
            **timeline(epoch_log, watch, run, len(data.x_train), len(data.x_test)),
            # The optimizer's own rate, also where the setting leaves Keras's default.
            "opt_base_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
            "dtype_policy": keras.config.dtype_policy().name,
        },
        **fast,
        **devices.gpu_facts(keras),
        "peak_gpu_memory_mb": devices.peak_gpu_memory_mb(keras),
        **sampler.summary(),
    }
    return Outcome("ok" if finite else "diverged", model, history, tested, facts)


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
    """What mlperf.log is written from (mnistbench/mlperf.py): unix times of the run's events."""
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


def _save_model(model, path: str) -> None:
    if model is None:  # a failed run leaves an empty file, its status says why
        Path(path).write_bytes(b"")
        return
    model.save(path)


def _predictions(tested: Tested | None) -> dict[str, np.ndarray]:
    if tested is None:
        empty = np.zeros(0, np.uint8)
        return {"y_true": empty, "y_pred": empty, "probabilities": np.zeros((0, N_CLASSES), np.float32)}
    return {"y_true": tested.y_true, "y_pred": tested.predicted, "probabilities": tested.probabilities}


def _peak_rss_mb() -> float:
    """This process's peak resident memory, exact (sampling from outside misses short peaks)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


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
    outcome.facts.update(facts or {}, peak_rss_mb=_peak_rss_mb())
    log.info("run %s: %s, test accuracy %s", name, outcome.status, outcome.test and outcome.test.accuracy)
    status = "ok" if outcome.status == "ok" else "failed"
    append_to_log(benchmark_block(watch, name, machine.stopwatch_attributes(), status))
    return write_outputs(run, name, repeat, outputs, outcome, watch, threads, started_unix, load_at_start)


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


def main(spec_json: str) -> None:
    """The training process that mnistbench.supervise starts: one run, as a job of its own."""
    spec = json.loads(spec_json)
    run = Run(**spec["run"])
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
        spec["options"],
        spec["repeat"],
        facts,
    )
