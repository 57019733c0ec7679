"""The TensorFlow input pipeline: the workflow's batches (`pipeline.shuffled_batches`) against
Keras's own array pipeline (tf.data tuned by a background thread), side by side in one run.

    .venv/bin/python bench/pipeline.py [--repeats 5]

Both build the same batches in the same order (the same losses, tests/test_train.py) and use
the same fast path; each measurement is a fresh process pinned to one CPU, as a training job
is, and the two alternate so that drift of the machine's speed hits both. Prints a markdown
table of the train phase, the epochs inside it and what fit() spent after its last epoch.
Needs resources/prepared/mnist_scale.npz. About 6 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench import Spread  # bench/bench.py: "median [q1-q3] (n)"

REPO = Path(__file__).resolve().parents[1]
PREPARED = REPO / "resources/prepared/mnist_scale.npz"
SETTINGS = [  # label, batch size, epochs (the lesson's mlp, adam)
    ("lesson: mlp 784-64-10, adam, batch 4, 1 epoch", 4, 1),
    ("the same, batch 32, 3 epochs", 32, 3),
    ("the same, batch 128, 3 epochs", 128, 3),
]
PIPELINES = ["ours", "keras"]
MEASURES = ["train", "epochs", "after last epoch"]


def measure_once(pipeline: str, batch_size: int, epochs: int) -> dict:
    """In this (fresh) process: train once, return the train phase split at the epoch marks."""
    from mnistbench.grid import Run
    from mnistbench.training import pipeline, runtime, train

    runtime.start_training_process("tensorflow", 1, True)
    keras = runtime.start_keras("tensorflow", 1)
    runtime.seed_everything(keras, 0)
    run = Run(model="mlp", batch_size=batch_size, epochs=epochs)
    data = pipeline.load_data(PREPARED)
    model = train.build_and_compile(run, data, train.choose_fast_path(run, len(data.x_train), 0, "auto"))
    marks = []

    class EpochMarks(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            marks.append(time.perf_counter())

    if pipeline == "ours":
        inputs = {"x": pipeline.shuffled_batches(data, batch_size), "shuffle": False}
    else:
        inputs = {"x": data.x_train, "y": data.y_train, "batch_size": batch_size, "shuffle": True}
    start = time.perf_counter()
    history = model.fit(**inputs, epochs=epochs, verbose=0, callbacks=[EpochMarks()])
    end = time.perf_counter()
    return {
        "train": end - start,
        "epochs": sum(marks[i + 1] - marks[i] for i in range(0, len(marks), 2)),
        "after last epoch": end - marks[-1],
        "loss": history.history["loss"][-1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per measurement")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # PIPELINE BATCH EPOCHS: child
    args = parser.parse_args()
    if args.one:
        pipeline, batch_size, epochs = args.one
        print(json.dumps(measure_once(pipeline, int(batch_size), int(epochs))))
        return

    results = {(label, p): [] for label, _, _ in SETTINGS for p in PIPELINES}
    for repeat in range(args.repeats):
        for label, batch_size, epochs in SETTINGS:
            for pipeline in PIPELINES if repeat % 2 == 0 else PIPELINES[::-1]:
                command = [sys.executable, __file__, "--one", pipeline, str(batch_size), str(epochs)]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                results[label, pipeline].append(json.loads(out.strip().splitlines()[-1]))
                print(f"  {label}, {pipeline}: {results[label, pipeline][-1]}", flush=True)

    print("\n| setting (TensorFlow) | measure | ours | Keras's array pipeline | ratio of medians |")
    print("| --- | --- | --- | --- | --- |")
    for label, _, _ in SETTINGS:
        ours, keras = results[label, "ours"], results[label, "keras"]
        same = {round(m["loss"], 6) for m in ours} == {round(m["loss"], 6) for m in keras}
        a, b = (
            Spread({measure: [m[measure] for m in runs] for measure in MEASURES}) for runs in (ours, keras)
        )
        for measure in MEASURES:
            ratio = a.median(measure) / b.median(measure)
            print(f"| {label} | {measure} | {a.text(measure)} | {b.text(measure)} | {ratio:.2f}x |")
        print(f"| {label} | same final loss | {'yes' if same else 'NO'} | | |")


if __name__ == "__main__":
    main()
