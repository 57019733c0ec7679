"""Ways to read the prepared `.npz` into arrays, each timed in fresh processes, side by side.

    .venv/bin/python bench/load_npz.py [PATH] [--repeats 7]

PATH defaults to resources/prepared/mnist_scale.npz (run the workflow once first). Prints the
median and range of each way; the workflow keeps the fastest (prepare.load_prepared).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (imports, the read): only the read is timed, so that each way pays for its bytes alone.
WAYS = {
    "np.load, every member": (
        "import numpy as np",
        "with np.load(PATH, allow_pickle=False) as z: arrays = {k: z[k] for k in z.files}",
    ),
    "zipfile member -> np.lib.format.read_array": (
        "import zipfile, numpy as np",
        "with zipfile.ZipFile(PATH) as z:\n"
        "    arrays = {n: np.lib.format.read_array(z.open(n), allow_pickle=False) for n in z.namelist()}",
    ),
    "stored members read straight into arrays (prepare.read_stored_members)": (
        "from mnistbench.data.prepare import read_stored_members",
        "arrays = read_stored_members(PATH)",
    ),
}
TIMER = "{imports}\nimport time\nstart = time.perf_counter()\n{code}\nprint(time.perf_counter() - start)"


def time_once(imports: str, code: str, path: Path) -> float:
    program = f"PATH = {str(path)!r}\n" + TIMER.format(imports=imports, code=code)
    return float(
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=REPO / "resources/prepared/mnist_scale.npz", type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.path} ({args.path.stat().st_size / 1e6:.1f} MB), {args.repeats} fresh processes each")
    print("| way | median s | min-max s | n |\n| --- | --- | --- | --- |")
    seconds = {label: [] for label in WAYS}
    for _ in range(args.repeats):  # interleaved, so that the machine's drifts hit every way alike
        for label, (imports, code) in WAYS.items():
            seconds[label].append(time_once(imports, code, args.path))
    for label, times in seconds.items():
        print(
            f"| {label} | {statistics.median(times):.4f} | {min(times):.4f}-{max(times):.4f} | {len(times)} |"
        )


if __name__ == "__main__":
    main()
