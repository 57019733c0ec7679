"""Benchmarks of the workflow, each a ratio measured side by side in this one run.

    .venv/bin/python bench/bench.py [--threads 1] [--skip-grid]

Needs resources/prepared/mnist_scale.npz (run the workflow once first). Takes about 11 minutes
on a 2-core machine; prints a markdown table. Training measurements are pinned to as many CPUs
as threads (as the workflow's jobs are), the plain Keras baseline included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from mnistbench.measures import flops as flops_counts

REPO = Path(__file__).resolve().parents[1]
PREPARED = REPO / "resources/prepared/mnist_scale.npz"
PYTHON = sys.executable
rows: list[tuple[str, str, str, str]] = []


def report(what, ours, baseline, ratio):
    rows.append((what, ours, baseline, ratio))
    print(f"  {what}: {ours} vs {baseline} -> {ratio}", flush=True)


REPEATS = 5


class Spread(dict):
    """Per phase the measurements of all repeats; str() gives "median [q1-q3] (n)"."""

    def median(self, phase):
        return statistics.median(self[phase])

    def text(self, phase, digits=2):
        values = sorted(self[phase])
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
        return f"{statistics.median(values):.{digits}f} s [{q1:.{digits}f}-{q3:.{digits}f}] (n={len(values)})"


def measure(mode, backend, model, batch, epochs, threads, pinned=True):
    """REPEATS runs, each in a fresh process: the median and spread, never the best of them."""
    runs = [measure_once(mode, backend, model, batch, epochs, threads, pinned) for _ in range(REPEATS)]
    return Spread({phase: [run[phase] for run in runs] for phase in runs[0]})


def measure_once(mode, backend, model, batch, epochs, threads, pinned, extra=(), data=PREPARED):
    command = [
        PYTHON,
        str(REPO / "bench/measure.py"),
        mode,
        backend,
        model,
        str(batch),
        str(epochs),
        str(data),
        str(threads),
        *([] if pinned else ["unpinned"]),
        *extra,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def train_comparisons(threads):
    print("train phase, workflow fast path against plain Keras fit() defaults:", flush=True)
    settings = [
        ("lesson: mlp 784-64-10, adam, batch 4, 1 epoch", "mlp", 4, 1),
        ("mlp, batch 128, 1 epoch", "mlp", 128, 1),
        ("cnn, batch 128, 1 epoch", "cnn", 128, 1),
    ]
    for label, model, batch, epochs in settings:
        plain = measure("plain", "tensorflow", model, batch, epochs, threads)
        ours = measure("workflow", "tensorflow", model, batch, epochs, threads)
        ratio = ours.median("train") / plain.median("train")
        report(f"{label} (TensorFlow)", ours.text("train"), plain.text("train"), f"{ratio:.2f}x")
        if model == "mlp":
            torch_plain = measure("plain", "torch", model, batch, epochs, threads)
            torch = measure("workflow", "torch", model, batch, epochs, threads)
            ratio = torch.median("train") / torch_plain.median("train")
            report(
                f"{label} (PyTorch)",
                torch.text("train"),
                torch_plain.text("train") + " torch plain",
                f"{ratio:.2f}x",
            )
        if model == "mlp" and batch == 4:
            jax = measure("workflow", "jax", model, batch, epochs, threads)
            ratio = jax.median("train") / plain.median("train")
            report(f"{label} (JAX)", jax.text("train"), plain.text("train") + " TF plain", f"{ratio:.2f}x")
            ratio = ours.median("data-load") / 0.1
            report(
                "data-load phase (TensorFlow run)", ours.text("data-load", 3), "target 0.1 s", f"{ratio:.2f}x"
            )
            ratio = ours.median("startup") / jax.median("startup")
            report(
                "start-up phase, TensorFlow against JAX",
                ours.text("startup"),
                jax.text("startup"),
                f"{ratio:.2f}x",
            )
            lesson_train = ours.median("train")
        if model == "cnn":
            free = measure("workflow", "tensorflow", model, batch, epochs, threads, pinned=False)
            ratio = free.median("train") / ours.median("train")
            report(
                "  the same unpinned (train.pin_cpus: false)",
                free.text("train"),
                ours.text("train") + " pinned",
                f"{ratio:.2f}x",
            )
    return lesson_train


def bare_import_seconds():
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "import tensorflow"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_grid(workdir: Path, cores: int, config: Path, *extra: str):
    start = time.perf_counter()
    subprocess.run(
        [
            PYTHON,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(config),
            "--cores",
            str(cores),
            "--quiet",
            "all",
            *extra,
            "--config",
            "train={isolate: false}",  # the speed-up of running training jobs side by side
            "--",
            "all",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def grid_scaling(scratch: Path):
    print("default grid end to end, --cores 1 against --cores 2:", flush=True)
    config = scratch / "config.yaml"
    text = (
        (REPO / "config.yaml")
        .read_text()
        .replace("local_path: null # a local", f"local_path: {REPO / 'resources/mnist.npz'} # a local", 1)
    )
    config.write_text(text)
    walls, busy = {}, {}
    for cores in (1, 2):
        work = scratch / f"cores{cores}"
        work.mkdir()
        walls[cores] = run_grid(work, cores, config)
        runs = pd.read_csv(work / "results/summary/runs.csv")
        busy[cores] = float((runs["time_train"] + runs["time_test"]).sum())
        job = runs["time_job"] - runs["time_train"] - runs["time_test"]
        fixed = {
            "job": job.median(),
            "startup": runs["time_startup"].median(),
            "data-load": runs["time_data_load"].median(),
            "compile": runs["time_compile"].median(),
        }
    speedup = walls[1] / walls[2]
    report(
        "grid wall time",
        f"{walls[2]:.0f} s (2 cores)",
        f"{walls[1]:.0f} s (1 core)",
        f"speed-up {speedup:.2f}",
    )
    idle = run_grid(scratch / "cores2", 1, config)
    slurm_note = " (SLURM's client is installed, its controller is not running)" if slow_slurm_probe() else ""
    report("snakemake start-up, nothing to do" + slurm_note, f"{idle:.1f} s", "", "")
    for cores in (1, 2):
        efficiency = busy[cores] / (cores * walls[cores])
        report(
            f"efficiency, --cores {cores}",
            f"{busy[cores]:.0f} s train+test",
            f"{cores} x {walls[cores]:.0f} s",
            f"{efficiency:.0%}",
        )
    return fixed


def slow_slurm_probe() -> bool:
    """The SLURM executor plugin runs `scontrol show config` when snakemake starts: with no
    controller to answer, that waits about 10 s."""
    if not shutil.which("scontrol"):
        return False
    probe = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    return "UP" not in probe.stdout


def fixed_cost(fixed):
    bare = bare_import_seconds()
    report(
        "per-run fixed cost (job - train - test, median)",
        f"{fixed['job']:.2f} s",
        f"{bare:.2f} s bare import tensorflow",
        f"{fixed['job'] / bare:.2f}x",
    )
    other = fixed["job"] - fixed["startup"] - fixed["data-load"] - fixed["compile"]
    report("  of which start-up (interpreter, snakemake, TF import)", f"{fixed['startup']:.2f} s", "", "")
    report(
        "  of which data-load / model build", f"{fixed['data-load']:.2f} / {fixed['compile']:.2f} s", "", ""
    )
    report("  of which writing outputs and exit", f"{other:.2f} s", "", "")


def compute_floor(lesson_train, threads):
    """Model FLOPs per epoch over measured matmul FLOP/s: the time arithmetic alone would take."""
    code = (
        "import time, numpy as np; a=np.random.rand(4096,784).astype('f4'); b=np.random.rand(784,64)"
        ".astype('f4'); a@b; t=time.perf_counter(); [a@b for _ in range(200)]; "
        "print(200*2*4096*784*64/(time.perf_counter()-t))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    rate = float(
        subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    )
    flops = flops_counts.train_flops("mlp", 64) * 60000  # mnistbench/measures/flops.py's convention
    floor = flops / rate
    report(
        "compute floor, lesson epoch (FLOPs / matmul FLOP/s)",
        f"{floor:.3f} s ({rate / 1e9:.0f} GFLOP/s)",
        f"{lesson_train:.2f} s measured",
        f"{lesson_train / floor:.0f}x above the floor",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per training process (as train.threads)"
    )
    parser.add_argument("--skip-grid", action="store_true", help="skip the two end-to-end grid runs")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="fresh processes per measurement")
    args = parser.parse_args()
    globals()["REPEATS"] = args.repeats
    if not PREPARED.exists():
        sys.exit(f"{PREPARED} is missing: run the workflow once first (./run.sh)")
    print(
        f"mnistbench benchmark, {os.cpu_count()} cores, {args.threads} thread(s) per training process",
        flush=True,
    )
    lesson_train = train_comparisons(args.threads)
    if not args.skip_grid:
        scratch = Path(tempfile.mkdtemp(prefix="mnistbench-bench-"))
        try:
            fixed_cost(grid_scaling(scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    compute_floor(lesson_train, args.threads)
    print("\n| measurement | ours | against | ratio |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
