"""Why two threads do not halve the cnn's train phase: the candidate causes measured side by
side in one run, each a fresh process pinned to as many CPUs as threads, as a training job is.

    .venv/bin/python bench/threads.py [--repeats 3] [--images 20000]

- the machine's ceiling: two 1-thread trainings at once, one per CPU (memory bandwidth, shared
  caches, a hypervisor's CPU sharing all show here);
- TensorFlow's op determinism (the workflow enables it for seeded runs);
- the per-step overhead that one thread runs alone (batch 128 against 512);
- another framework (JAX's XLA CPU runtime) on the same model.

Trains on the first --images images of resources/prepared/mnist_scale.npz (a third of an epoch
by default: the ratios, not the seconds, are the point). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import PREPARED, PYTHON, REPO, Spread  # bench/bench.py

# Runs bench/measure.py with TensorFlow's op determinism left off (seeds still set).
NOT_DETERMINISTIC = """
import runpy, sys
import mnistbench.training.train as train
def seed_only(keras, seed):
    keras.utils.set_random_seed(seed)
    return False
train.seed_everything = seed_only
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

SETTINGS = [  # label, backend, batch, threads, deterministic, processes at once
    ("TensorFlow b128, 1 thread", "tensorflow", 128, 1, True, 1),
    ("TensorFlow b128, 2 threads", "tensorflow", 128, 2, True, 1),
    ("TensorFlow b128, 1 thread, 2 such jobs at once", "tensorflow", 128, 1, True, 2),
    ("TensorFlow b128, 1 thread, no op determinism", "tensorflow", 128, 1, False, 1),
    ("TensorFlow b128, 2 threads, no op determinism", "tensorflow", 128, 2, False, 1),
    ("TensorFlow b512, 1 thread", "tensorflow", 512, 1, True, 1),
    ("TensorFlow b512, 2 threads", "tensorflow", 512, 2, True, 1),
    ("JAX b128, 1 thread", "jax", 128, 1, True, 1),
    ("JAX b128, 2 threads", "jax", 128, 2, True, 1),
]
PAIRS = {  # speed-up of the second label over the first
    "2 threads, TensorFlow b128": ("TensorFlow b128, 1 thread", "TensorFlow b128, 2 threads"),
    "ceiling: 2 jobs of 1 thread (throughput)": (
        "TensorFlow b128, 1 thread",
        "TensorFlow b128, 1 thread, 2 such jobs at once",
    ),
    "2 threads, no op determinism": (
        "TensorFlow b128, 1 thread, no op determinism",
        "TensorFlow b128, 2 threads, no op determinism",
    ),
    "2 threads, TensorFlow b512": ("TensorFlow b512, 1 thread", "TensorFlow b512, 2 threads"),
    "2 threads, JAX b128": ("JAX b128, 1 thread", "JAX b128, 2 threads"),
}


def measure(data: Path, backend, batch, threads, deterministic) -> float:
    script = [
        str(REPO / "bench/measure.py"),
        "workflow",
        backend,
        "cnn",
        str(batch),
        "1",
        str(data),
        str(threads),
    ]
    command = [PYTHON, *(["-c", NOT_DETERMINISTIC] if not deterministic else []), *script]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["train"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "subset.npz"
        arrays = dict(np.load(PREPARED))
        arrays["x_train"], arrays["y_train"] = (
            arrays["x_train"][: args.images],
            arrays["y_train"][: args.images],
        )
        np.savez(data, **arrays)
        times: dict[str, list[float]] = {label: [] for label, *_ in SETTINGS}
        for repeat in range(args.repeats):
            for label, backend, batch, threads, deterministic, at_once in SETTINGS:
                with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
                    jobs = [
                        pool.submit(measure, data, backend, batch, threads, deterministic)
                        for _ in range(at_once)
                    ]
                    seconds = [job.result() for job in jobs]
                # At once, n jobs do n times the work: the time per job's worth of work.
                times[label].append(max(seconds) / at_once)
                print(f"  repeat {repeat + 1}, {label}: {seconds}", flush=True)
    spreads = {label: Spread({"train": values}) for label, values in times.items()}
    print(f"\n{args.images} training images, cnn, one pass, train phase per job's worth of work\n")
    print("| setting | train phase |")
    print("| --- | --- |")
    for label, spread in spreads.items():
        print(f"| {label} | {spread.text('train')} |")
    print("\n| comparison | speed-up (median ratio) |")
    print("| --- | --- |")
    for what, (one, two) in PAIRS.items():
        print(f"| {what} | {spreads[one].median('train') / spreads[two].median('train'):.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
