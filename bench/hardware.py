"""Hardware dimensions measured side by side in one run: the cnn at batch 128 for one epoch
with 1 and 2 threads (speed-up, parallel efficiency), and float32 against mixed_bfloat16 and
mixed_float16 on this CPU (naming the CPU flags that decide low-precision speed).

    .venv/bin/python bench/hardware.py [--repeats 5]

Each measurement is a fresh process, pinned to as many CPUs as threads as a training job is;
the settings alternate, so that drift of the machine's speed hits all alike. Needs
resources/prepared/mnist_scale.npz. Prints a markdown table.
"""

from __future__ import annotations

import argparse

from bench import Spread, measure_once  # bench/bench.py
from mnistbench.training import devices

SETTINGS = [  # label, threads, precision
    ("threads 1, float32", 1, "float32"),
    ("threads 2, float32", 2, "float32"),
    ("threads 1, mixed_bfloat16", 1, "mixed_bfloat16"),
    ("threads 1, mixed_float16", 1, "mixed_float16"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in SETTINGS}
    for repeat in range(repeats):
        for label, threads, precision in SETTINGS:
            extra = [f"precision={precision}"]
            runs[label].append(measure_once("workflow", "tensorflow", "cnn", 128, 1, threads, True, extra))
            print(f"  repeat {repeat + 1}, {label}: {runs[label][-1]['train']:.2f} s", flush=True)
    spreads = {
        label: Spread({k: [r[k] for r in rs] for k in ("train", "accuracy")}) for label, rs in runs.items()
    }
    base = spreads["threads 1, float32"]
    cpu = devices.cpu_facts()
    print(f"\nCPU: {cpu['cpu_model']}; low-precision flags: {cpu['cpu_flags_low_precision'] or 'none'}\n")
    print("| cnn, batch 128, 1 epoch (TensorFlow) | train phase | accuracy | against threads 1, float32 |")
    print("| --- | --- | --- | --- |")
    for label, threads, _ in SETTINGS:
        spread = spreads[label]
        ratio = spread.median("train") / base.median("train")
        against = "reference" if spread is base else f"{ratio:.2f}x time"
        if threads == 2:
            speedup = 1 / ratio
            against += f", speed-up {speedup:.2f}x, efficiency {speedup / threads:.0%}"
        print(f"| {label} | {spread.text('train')} | {spread.median('accuracy'):.2%} | {against} |")


if __name__ == "__main__":
    main()
