"""The spread of repeated timings with training jobs isolated (one at a time) and side by side.

    .venv/bin/python bench/isolation.py [--repeats 5] [--cores 2]

Needs resources/mnist.npz (run the workflow once first). Runs the same small grid twice with
the real workflow, `train.isolate: true` and `false`, and prints per setting the median train
phase, its interquartile range relative to the median, and the wall time of each grid: the
figures behind the default of `train.isolate` (docs/reading-the-spread.md; the figures are in
docs/measurements.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SETTINGS = [
    {"model": "mlp", "optimizer": "adam", "batch_size": 4, "epochs": 1},  # the lesson
    {"model": "mlp", "optimizer": "adam", "batch_size": 128, "epochs": 1},
    {"model": "softmax", "optimizer": "sgd", "batch_size": 32, "epochs": 3},
]


def run_grid(work: Path, isolate: bool, repeats: int, cores: int) -> float:
    config = {
        "experiments": {"isolation": [{**setting, "repeats": repeats} for setting in SETTINGS]},
        "data": {"mnist": {"local_path": str(REPO / "resources/mnist.npz")}},
        "train": {"isolate": isolate},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(work / "config.yaml"),
            "--cores",
            str(cores),
            "--quiet",
            "all",
            "--",
            "results/summary/settings.csv",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnistbench-isolation-") as scratch:
        for isolate in (True, False):
            work = Path(scratch, f"isolate-{isolate}")
            work.mkdir()
            wall = run_grid(work, isolate, args.repeats, args.cores)
            settings = pd.read_csv(work / "results/summary/settings.csv")
            runs = pd.read_csv(work / "results/summary/runs.csv")
            for _, row in settings.iterrows():
                iqr = (row["time_train_q3"] - row["time_train_q1"]) / row["time_train_median"]
                mine = runs[runs["run"].isin(row["runs"].split(";"))]
                rows.append(
                    {
                        "isolate": isolate,
                        "setting": f"{row['model']} {row['optimizer']} b{row['batch_size']} e{row['epochs']}",
                        "train median s": round(row["time_train_median"], 2),
                        "q1-q3 s": f"{row['time_train_q1']:.2f}-{row['time_train_q3']:.2f}",
                        "IQR / median": f"{iqr:.1%}",
                        "n": row["n"],
                        "noisy": row["noisy"],
                        "overlap s (median)": round(mine["overlap_seconds"].median(), 1),
                        "grid wall s": round(wall),
                    }
                )
    print(pd.DataFrame(rows).to_markdown(index=False) if _has_tabulate() else pd.DataFrame(rows).to_string())


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
