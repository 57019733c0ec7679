"""One training measurement in a fresh process (so that imports and thread pools start clean).

python bench/measure.py MODE BACKEND MODEL BATCH EPOCHS DATA THREADS [unpinned] [precision=P]
MODE: workflow (the workflow's train phase, fast path), workflow-jit (the same with
jit_compile forced on: XLA, or torch.compile on PyTorch) or plain (Keras fit() with its defaults).
Both get the same CPU budget: pinned to THREADS CPUs as a training job is (train.pin_cpus),
unless "unpinned" is given; precision=P sets the run's dtype policy (workflow modes). Prints
one JSON line of phase seconds and each epoch's seconds.
"""

import json
import sys
import time

from mnistbench.data.prepare import load_prepared
from mnistbench.grid import Run
from mnistbench.stopwatch import Stopwatch
from mnistbench.training.cpus import claim_cpus
from mnistbench.training.runtime import configure_runtime, start_training_process
from mnistbench.training.train import train_run

mode, backend, model, batch_size, epochs, data_path, threads = sys.argv[1:8]
batch_size, epochs, threads = int(batch_size), int(epochs), int(threads)
pinned = "unpinned" not in sys.argv[8:]
precision = next((a.split("=", 1)[1] for a in sys.argv[8:] if a.startswith("precision=")), "float32")
if mode.startswith("workflow"):
    start_training_process(backend, threads, pinned)  # as the workflow's train jobs
else:
    if pinned:
        claim_cpus(threads)
    configure_runtime(backend, threads)
jit = True if mode == "workflow-jit" else "auto"
run = Run(  # the lesson's other settings
    model=model,
    batch_size=batch_size,
    epochs=epochs,
    backend=backend,
    threads=threads,
    precision=precision,
    jit_compile=jit,
)

if mode.startswith("workflow"):
    watch = Stopwatch()
    options = {"steps_per_execution": 0}
    outcome = train_run(run, data_path, threads, options, watch)
    epochs_s = [row["seconds"] for row in outcome.history]
    print(json.dumps({**watch.seconds, "accuracy": outcome.test.accuracy, "epoch_seconds": epochs_s}))
else:
    import keras

    from mnistbench.training.models import build_model

    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)  # inter-op: TF's default
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)  # inter-op: PyTorch's default
    keras.utils.set_random_seed(0)
    arrays, shift, scale = load_prepared(data_path)
    x, y = arrays["x_train"], arrays["y_train"]
    built = time.perf_counter()
    net = build_model(run, shift, scale)
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    built = time.perf_counter() - built
    epochs_s = []

    class EpochSeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs_s.append(time.perf_counter() - self.started)

    start = time.perf_counter()
    net.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[EpochSeconds()])
    print(json.dumps({"build": built, "train": time.perf_counter() - start, "epoch_seconds": epochs_s}))
