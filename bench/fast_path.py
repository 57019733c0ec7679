"""The workflow's training function against a plain Keras fit() of the same model, per backend,
on the device at hand, side by side: compilation, first epoch and steady epoch.

    .venv/bin/python bench/fast_path.py [--backends tensorflow jax torch] [--model mlp]
        [--batch 128] [--epochs 3] [--images 60000] [--repeats 3] [--threads 1]

Needs resources/prepared/mnist_scale.npz (run the workflow once first). Each measurement is a
fresh process (bench/measure.py), the two modes alternating, pinned to --threads CPUs. Plain
Keras compiles inside fit(), so its compile time is what building the model, compile() and
fit() spend up to the end of its first epoch beyond a steady epoch (the median of the later
ones); the workflow compiles ahead, in its compile phase (the model's build included), where it
also compiles its evaluation of the test set, which plain fit() does not have.
Prints a markdown table of medians [q1-q3] (n) and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PREPARED, measure_once  # noqa: E402
from mnistbench.files import save_npz  # noqa: E402


def spread(values: list[float]) -> str:
    values = sorted(values)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return f"{statistics.median(values):.3f} [{q1:.3f}-{q3:.3f}] (n={len(values)})"


def phases(measured: dict, mode: str) -> dict:
    """Compilation, compile + first epoch, and steady epoch seconds of one measurement. The
    workflow compiles in its compile phase; plain fit() compiles and builds inside fit(), before
    and in its first epoch: its compilation is all that fit() spends up to the end of its first
    epoch beyond a steady epoch."""
    epochs = measured["epoch_seconds"]
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    if mode == "workflow":
        compile_s = measured["compile"]
        first = compile_s + measured["train"] - sum(epochs[1:])
    else:  # its build and compile() too, as the workflow's compile phase holds them
        first = measured["build"] + measured["train"] - sum(epochs[1:])
        compile_s = max(0.0, first - steady)
    # The train phase: the workflow's is free of compilation, plain fit()'s holds it.
    return {
        "compile": compile_s,
        "compile + first epoch": first,
        "steady epoch": steady,
        "train phase": measured["train"],
    }


def subset(images: int) -> Path:
    """The prepared data cut to its first `images` training images (the test set whole)."""
    with np.load(PREPARED) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["x_train"], arrays["y_train"] = arrays["x_train"][:images], arrays["y_train"][:images]
    path = Path(tempfile.mkdtemp()) / "mnist_scale.npz"
    save_npz(path, arrays)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    data = subset(args.images)
    print(
        f"{args.model}, batch {args.batch}, {args.epochs} epochs, {args.images} images, "
        f"{args.threads} thread(s), {args.repeats} repeats, fresh process each",
        flush=True,
    )
    print("| backend | phase | workflow (s) | plain Keras fit (s) | workflow / plain |")
    print("|---|---|---|---|---|")
    for backend in args.backends:
        measured = {"workflow": [], "plain": []}
        for _ in range(args.repeats):
            for mode in measured:  # alternating, so that drift hits both alike
                one = measure_once(
                    mode,
                    backend,
                    args.model,
                    args.batch,
                    args.epochs,
                    args.threads,
                    True,
                    extra=(),
                    data=data,
                )
                measured[mode].append(phases(one, mode))
        for phase in ("compile", "compile + first epoch", "steady epoch", "train phase"):
            ours = [m[phase] for m in measured["workflow"]]
            plain = [m[phase] for m in measured["plain"]]
            ratio = (
                statistics.median(ours) / statistics.median(plain)
                if statistics.median(plain)
                else float("nan")
            )
            print(f"| {backend} | {phase} | {spread(ours)} | {spread(plain)} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
