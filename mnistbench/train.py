"""One training run: load, compile, train, test, each phase timed as the lesson does.

Keras is imported only inside `train_run`, after `configure_runtime` has set the backend and
the thread pools: both must be fixed before the framework starts.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import random
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from mnistbench import machine
from mnistbench.cpus import claim_cpus, usable_cpus
from mnistbench.files import atomic_write, save_npz, write_csv, write_json
from mnistbench.prepare import ARRAYS, load_prepared

log = logging.getLogger("mnistbench")

PHASES = ("startup", "data-load", "compile", "train", "test")
# Largest number of steps fused into one call of the compiled training loop (the fast path).
MAX_STEPS_PER_EXECUTION = 256
# Testing hook: runs whose names are listed here raise, to prove that failures are contained.
FAIL_RUNS_VARIABLE = "MNISTBENCH_FAIL_RUNS"
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "seconds", "samples_per_second"]
EMPTY_PREDICTIONS = {
    "y_true": np.zeros(0, np.uint8),
    "y_pred": np.zeros(0, np.uint8),
    "probabilities": np.zeros((0, 10), np.float32),
}


class Stopwatch:
    """Named phase timings in seconds, in the order they ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def record(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = seconds

    def time(self, phase: str):
        watch = self

        class _Phase:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                watch.record(phase, time.perf_counter() - self.start)

        return _Phase()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"phase": list(self.seconds), "seconds": list(self.seconds.values())})


def configure_runtime(backend: str, threads: int) -> None:
    """Fix the backend and every thread pool to `threads`, so parallel jobs never oversubscribe."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    # TensorFlow's own pools are sized in train_run through tf.config.threading: its
    # TF_NUM_*_THREADS variables also starve the input pipeline (measured: 40% slower).
    if backend == "jax":
        flags = ["--xla_gpu_deterministic_ops=true"]
        if threads == 1:
            flags.append("--xla_cpu_multi_thread_eigen=false")
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def start_training_process(backend: str, threads: int, pin_cpus: bool = True) -> None:
    """All that a training process fixes before Keras is first imported: its CPUs, the
    backend and thread pools (threads inherit both), and the imports it keeps out."""
    if pin_cpus:
        claim_cpus(threads)
    configure_runtime(backend, threads)
    skip_unused_imports(backend)


def skip_unused_imports(backend: str) -> None:
    """Keep out packages that Keras and TensorFlow import when installed but a training job
    never uses: matplotlib.pyplot (0.25 s, for Keras's image gallery) and, on TensorFlow, JAX
    (0.4 s, for tf.lite). Both imports are guarded by `except ImportError`, and a module set
    to None in sys.modules raises exactly that. Not for notebooks: they plot.
    """
    sys.modules.setdefault("matplotlib.pyplot", None)
    if backend == "tensorflow":
        sys.modules.setdefault("jax", None)


def choose_fast_path(params: dict, n_train: int, steps_per_execution: int, jit_compile) -> dict:
    """Per run: how many steps per compiled call, and whether to compile with XLA."""
    steps_per_epoch = math.ceil(n_train / params["batch_size"])
    if steps_per_execution == 0:
        steps_per_execution = min(MAX_STEPS_PER_EXECUTION, steps_per_epoch)
    if params.get("backend") == "jax":
        jit_compile = True  # without jit, JAX runs every op eagerly (measured: 35 times slower)
    elif jit_compile == "auto":
        # Measured here on TensorFlow's CPU path, XLA never paid off: +0.2 s (softmax, 1 epoch),
        # +1.2 s (blog, 20 epochs), +2.9 s (lesson, 3 epochs), 6 times slower on the cnn.
        jit_compile = False
    return {"steps_per_execution": int(steps_per_execution), "jit_compile": bool(jit_compile)}


def _epoch_logger(keras, n_train: int, rows: list):
    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            row = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"]),
                "accuracy": float(logs["accuracy"]),
                "seconds": seconds,
                "samples_per_second": n_train / seconds,
            }
            rows.append(row)
            if not math.isfinite(row["loss"]):
                # Checked per epoch: Keras's TerminateOnNaN checks every batch, which costs
                # a third of the train time at small batch sizes.
                self.model.stop_training = True
            log.info(
                "epoch %d: loss %.4f, accuracy %.4f, %.2f s",
                row["epoch"],
                row["loss"],
                row["accuracy"],
                seconds,
            )

    return EpochLog()


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
    return "CPU"


def _inter_op_threads(threads: int) -> int:
    """Measured on the lesson's run (batch 4), 4 to 6 runs each: pinned to its own CPU (see
    cpus.py), one inter-op thread trains in 5-6 s, two in 6 s or 11 s at random; unpinned,
    one takes 11 s and two 6 s."""
    return 1 if len(usable_cpus()) <= threads else 2


def _threads_used(keras, threads: int) -> int:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads()
    return threads  # XLA's CPU pool is fixed by XLA_FLAGS in configure_runtime


def _seed(keras, seed: int) -> bool:
    """Seed every generator; returns whether the backend's ops are deterministic as well."""
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        # Same seed, same numbers: TensorFlow then raises rather than run an op that has no
        # deterministic kernel (some GPU ops), so a run never silently varies.
        tf.config.experimental.enable_op_determinism()
        return True
    # keras.utils.set_random_seed imports TensorFlow (about 2 s) even on JAX, to seed tf.data;
    # JAX runs need only Keras's own global seed, set here as that function sets it.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    # XLA on the CPU is deterministic; on a GPU, configure_runtime asked XLA for deterministic ops.
    return True


def train_run(params: dict, data_folder: str, threads: int, options: dict, watch: Stopwatch) -> dict:
    """Train and test one run; returns the metrics and fills `watch` with the phase timings."""
    if params["backend"] == "jax" and importlib.util.find_spec("jax") is None:
        raise RuntimeError("backend jax is not installed: .venv/bin/pip install -r requirements-jax.txt")
    import keras

    from mnistbench.models import build_model, build_optimizer

    if params.get("name") in os.environ.get(FAIL_RUNS_VARIABLE, "").split(","):
        raise RuntimeError(f"run {params['name']} was made to fail ({FAIL_RUNS_VARIABLE})")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(_inter_op_threads(threads))
    deterministic = _seed(keras, params["seed"])
    watch.record("startup", time.time() - psutil.Process().create_time())

    with watch.time("data-load"):
        arrays, shift, scale = load_prepared(data_folder)
    x_train, y_train, x_test, y_test = (arrays[name] for name in ARRAYS)

    fast = choose_fast_path(params, len(x_train), options["steps_per_execution"], options["jit_compile"])
    with watch.time("compile"):
        model = build_model(params, shift, scale)
        model.compile(
            optimizer=build_optimizer(params),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=fast["steps_per_execution"],
            jit_compile=fast["jit_compile"],
        )

    history: list[dict] = []
    with watch.time("train"):
        model.fit(
            x_train,
            y_train,
            batch_size=params["batch_size"],
            epochs=params["epochs"],
            shuffle=True,
            verbose=0,
            callbacks=[_epoch_logger(keras, len(x_train), history)],
        )
    diverged = not history or not all(math.isfinite(row["loss"]) for row in history)

    with watch.time("test"):
        probabilities = model.predict(x_test, batch_size=1024, verbose=0)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    predicted = probabilities.argmax(axis=1).astype(np.uint8)
    picked = probabilities[np.arange(len(y_test)), y_test]
    test_loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    test_accuracy = float(np.mean(predicted == y_test))
    diverged = diverged or not math.isfinite(test_loss) or not np.isfinite(probabilities).all()
    return {
        "status": "diverged" if diverged else "ok",
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "epochs_completed": len(history),
        "n_train": len(x_train),
        "device": _device(keras),
        "deterministic": deterministic,
        "threads_used": _threads_used(keras, threads),
        "backend": keras.backend.backend(),
        **fast,
        "_model": model,
        "_history": history,
        "_predictions": {"y_true": y_test, "y_pred": predicted, "probabilities": probabilities},
    }


def _save_model(model, path: str) -> None:
    if model is None:  # a failed run leaves an empty file, its status says why
        Path(path).write_bytes(b"")
        return
    model.save(path)


def run_and_record(params: dict, data_folder: str, outputs: dict, threads: int, options: dict) -> dict:
    """Train one run and write all its outputs; metrics.json goes last, so it marks completion.

    A run that raises is recorded with status "failed" and its error rather than crashing the
    grid; the workflow reports it at the end (see rules/common.smk).
    """
    watch = Stopwatch()
    started = datetime.now(UTC)
    started_unix = time.time()
    result: dict = {}
    try:
        result = train_run(params, data_folder, threads, options, watch)
    except Exception as error:
        log.error("run %s failed: %s\n%s", params.get("name"), error, traceback.format_exc())
        result = {"status": "failed", "error": f"{type(error).__name__}: {error}"}

    model = result.pop("_model", None)
    atomic_write(outputs["model"], lambda temporary: _save_model(model, temporary))
    write_csv(outputs["history"], pd.DataFrame(result.pop("_history", []), columns=HISTORY_COLUMNS))
    write_csv(outputs["timings"], watch.frame())
    save_npz(outputs["predictions"], result.pop("_predictions", EMPTY_PREDICTIONS))
    metrics = {
        "run": params.get("name"),
        **result,
        "params": {key: value for key, value in params.items() if key != "name"},
        "timings": watch.seconds,
        "threads": threads,
        "cpus": usable_cpus(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "started_unix": started_unix,
        "finished_unix": time.time(),
        "host": machine.host(),
        "versions": machine.versions(),
    }
    write_json(outputs["metrics"], metrics)
    log.info("run %s: %s, test accuracy %s", metrics["run"], metrics["status"], metrics.get("test_accuracy"))
    return metrics
