"""Aggregation of every run's outputs into the summary tables the report reads."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mnistbench import cores
from mnistbench.data import dataset
from mnistbench.files import write_csv
from mnistbench.grid import SETTINGS, target_label  # target_label names time_to_<t>
from mnistbench.measures import machine
from mnistbench.results import efficiency
from mnistbench.stopwatch import PHASES, phase_column

log = logging.getLogger("mnistbench")


# Timed columns summarised per setting in settings.csv; time_job is the whole job (Snakemake's).
TIMED_COLUMNS = [*(phase_column(phase) for phase in PHASES), "time_epoch_steady", "time_job"]
STATISTICS = {
    "median": lambda x: x.median(),
    "q1": lambda x: x.quantile(0.25),
    "q3": lambda x: x.quantile(0.75),
    "min": lambda x: x.min(),
    "max": lambda x: x.max(),
}
# Facts of metrics.json that runs.csv keeps as they are, under the same names.
COPIED_FROM_METRICS = (
    "peak_rss_mb",
    "code_version",
    "deterministic",
    "threads_used",
    "time_limit_s",
    "slurm_partition",
    "dtype_policy",
    "cpu_model",
    "cpu_flags_low_precision",
    "gpu_name",
    "peak_gpu_memory_mb",
    "pinned",
    "why_unpinned",
    "steps_per_execution",
    "compile_measured",
    "compile_in_first_epoch_s",
    "eval_every_epoch",
    "reached_target",
)
# pyperf's rule for an unstable benchmark: standard deviation above 10% of the mean, or a
# repeat more than 50% away from the mean. Applied to the train phase, with 2 repeats or more.
NOISY_STDEV_OVER_MEAN = 0.10
NOISY_DISTANCE_FROM_MEAN = 0.50


def _epoch_times(history: pd.DataFrame) -> tuple[float | None, float | None]:
    """The first epoch (compiling and tracing included) and the median of the others."""
    seconds = history["seconds"].dropna()
    if seconds.empty:
        return None, None
    steady = float(seconds.iloc[1:].median()) if len(seconds) > 1 else None
    return float(seconds.iloc[0]), steady


def steady_epoch_seconds(history: pd.DataFrame) -> float | None:
    """The steady epoch: the median of the epochs after the first (which traces and compiles), or
    the only epoch where there is one."""
    first, steady = _epoch_times(history)
    return steady if steady is not None else first


def times_to_targets(history: pd.DataFrame, targets) -> dict:
    """Per target, at the end of the first epoch whose evaluation reached it: the train clock
    (evaluations off it, AlgoPerf), the wall clock (evaluations on it, MLPerf) and the epoch.
    None where no evaluation reached it: never 0."""
    evaluated = history.dropna(subset=["test_accuracy"]) if "test_accuracy" in history else None
    row = {}
    for target in targets:
        reached = [] if evaluated is None else evaluated[evaluated["test_accuracy"] >= target]
        first = reached.iloc[0] if len(reached) else None
        for column, source in (("time_to", "train_clock"), ("wall_to", "wall_clock"), ("epochs_to", "epoch")):
            row[f"{column}_{target_label(target)}"] = None if first is None else float(first[source])
    return row


def _training_ended(metrics: dict, started: float | None, train_seconds: float | None) -> float | None:
    """When the run's last epoch, or the evaluation after it, ended: evaluations run between the
    epochs, so the train phase's start plus its seconds (evaluations taken out) ends too early."""
    epochs = (metrics.get("timeline") or {}).get("epochs") or []
    # Without evaluation every epoch, the one evaluation is the test phase, after training.
    kinds = ("stop", "eval_stop") if metrics.get("eval_every_epoch") else ("stop",)
    ends = [epoch[kind] for epoch in epochs for kind in kinds if epoch.get(kind)]
    if ends:
        return max(ends)
    return started + train_seconds if started and train_seconds else None


def _run_row(metrics: dict, benchmark: pd.DataFrame, history: pd.DataFrame, experiments: list[str]) -> dict:
    params = metrics["params"]
    row = {"run": metrics["run"], "experiments": ";".join(experiments)}
    row.update({key: params.get(key) for key in SETTINGS})
    row["repeat"] = metrics.get("repeat", 1)
    row.update(
        status=metrics["status"],
        error=metrics.get("error", ""),
        test_accuracy=metrics.get("test_accuracy"),
        test_loss=metrics.get("test_loss"),
        epochs_completed=metrics.get("epochs_completed", 0),
    )
    short = cores.threads_short(metrics) if metrics["status"] == "ok" else None
    if short:  # a result from before the calls refused such runs: never shown as its setting
        row.update(status="failed", error=short)
    for phase in PHASES:
        row[phase_column(phase)] = metrics["timings"].get(phase)
    row["time_first_epoch"], row["time_epoch_steady"] = _epoch_times(history)
    train_seconds = metrics["timings"].get("train")
    row["time_job"] = float(benchmark["s"].iloc[0]) if len(benchmark) else None
    row["train_samples_per_second"] = (
        metrics.get("n_train", 0) * metrics.get("epochs_completed", 0) / train_seconds
        if train_seconds
        else None
    )
    row["peak_memory_mb"] = float(benchmark["max_rss"].iloc[0]) if len(benchmark) else None
    row["cpu_seconds"] = float(benchmark["cpu_time"].iloc[0]) if len(benchmark) else None
    started = metrics.get("phase_started_unix", {}).get("train")
    row["train_started_unix"] = started
    row["train_finished_unix"] = _training_ended(metrics, started, train_seconds)
    load_at_start, load_at_end = metrics.get("load_at_start", {}), metrics.get("load_at_end", {})
    row.update(
        load_average_start=load_at_start.get("load_average"),
        load_average_end=load_at_end.get("load_average"),
        cpu_mhz_start=load_at_start.get("cpu_mhz"),
        cpu_mhz_end=load_at_end.get("cpu_mhz"),
    )
    row.update({key: metrics.get(key) for key in COPIED_FROM_METRICS})
    row.update(efficiency.run_columns(metrics, steady_epoch_seconds(history)))  # FLOPs, energy
    row.update(
        threads_given=metrics.get("threads"),  # Snakemake's, which --cores may scale down
        cpus=" ".join(map(str, metrics.get("cpus") or [])),
        device_used=metrics.get("device"),
        jit_compiled=metrics.get("jit_compile"),  # what the fast path chose for the setting
        host=metrics["host"]["hostname"],
        slurm_job_id=metrics["host"].get("slurm_job_id"),
        started_at=metrics.get("started_at"),
    )
    return row


def aggregate(inputs: dict, outputs: dict, experiments: dict[str, list[str]], targets=()) -> pd.DataFrame:
    """Write runs.csv (one row per run and repeat), settings.csv (one row per setting), timings.csv
    and history.csv (long), machine.csv, datasets.csv."""
    rows, timings, histories, hosts = [], [], [], {}
    host_gpus = efficiency.HostGpus()  # the GPU of each host that ran a GPU run
    for metrics_path, benchmark_path, history_path in zip(
        inputs["metrics"], inputs["benchmark"], inputs["history"], strict=True
    ):
        metrics = json.loads(Path(metrics_path).read_text())
        benchmark = pd.read_csv(benchmark_path, sep="\t")
        history = pd.read_csv(history_path)
        row = _run_row(metrics, benchmark, history, experiments.get(metrics["run"], []))
        ok = row["status"] == "ok"  # a failed or diverged run reached nothing
        row.update(times_to_targets(history if ok else history.iloc[:0], targets))
        rows.append({**row, **efficiency.to_target_columns(row, [target_label(t) for t in targets])})
        timings += [{"run": metrics["run"], "phase": p, "seconds": s} for p, s in metrics["timings"].items()]
        history.insert(0, "run", metrics["run"])
        histories.append(history)
        hosts.setdefault(metrics["host"]["hostname"], metrics["host"])
        host_gpus.add(metrics)

    runs = pd.DataFrame(rows).sort_values("test_accuracy", ascending=False, na_position="last")
    runs.insert(runs.columns.get_loc("train_started_unix"), "overlap_seconds", overlap_seconds(runs))
    write_csv(outputs["runs"], runs)
    write_csv(outputs["settings"], settings_table(runs))
    write_csv(outputs["timings"], pd.DataFrame(timings, columns=["run", "phase", "seconds"]))
    write_csv(outputs["history"], pd.concat(histories, ignore_index=True) if histories else pd.DataFrame())

    here = machine.describe()
    machines = [here] + [info for name, info in hosts.items() if name != here["hostname"]]
    write_csv(outputs["machine"], pd.DataFrame(host_gpus.joined(machines)))

    datasets = []
    for path in inputs["provenance"]:
        provenance = json.loads(Path(path).read_text())
        datasets.append(
            {
                **{key: provenance.get(key) for key in ("dataset", "source", "address", "content_sha256")},
                **dataset.dataset_facts(provenance),  # image_shape, n_classes
                "fetched_at": provenance.get("fetched_at"),
            }
        )
    write_csv(outputs["datasets"], pd.DataFrame(datasets))
    log.info("aggregated %d runs: %s", len(runs), runs["status"].value_counts().to_dict())
    return runs


def overlap_seconds(runs: pd.DataFrame) -> pd.Series:
    """Per run, the seconds during which another run's train phase ran on the same host while
    its own train phase ran (the union of the overlaps, so two neighbours at once count once)."""
    result = pd.Series(0.0, index=runs.index)
    timed = runs.dropna(subset=["train_started_unix", "train_finished_unix"])
    for index, run in timed.iterrows():
        others = timed[(timed.index != index) & (timed["host"] == run["host"])]
        starts = others["train_started_unix"].clip(lower=run["train_started_unix"])
        ends = others["train_finished_unix"].clip(upper=run["train_finished_unix"])
        spans = sorted((s, e) for s, e in zip(starts, ends, strict=True) if e > s)
        covered, reach = 0.0, -np.inf
        for start, end in spans:
            start = max(start, reach)
            if end > start:
                covered += end - start
                reach = end
        result[index] = round(covered, 3)
    return result


def is_noisy(seconds: pd.Series) -> bool:
    """pyperf's instability rule (see NOISY_*); one repeat has no spread, so it is never noisy."""
    seconds = seconds.dropna()
    if len(seconds) < 2:
        return False
    mean = seconds.mean()
    far = (seconds - mean).abs().max() > NOISY_DISTANCE_FROM_MEAN * mean
    return bool(seconds.std(ddof=1) > NOISY_STDEV_OVER_MEAN * mean or far)


def settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct setting: repeats, the median and spread of each timed column, the
    median accuracy, whether the repeats gave identical numbers, and whether to trust the times.
    Computed per column over all groups at once: group by group took a minute at 2000 runs."""
    finished = runs[runs["status"] == "ok"]
    keys = list(SETTINGS)
    # A setting left unset (NaN) must still group: "-" stands for it, and goes again at the end.
    keyed = finished.astype({key: object for key in keys}).fillna({key: "-" for key in keys})
    groups = keyed.groupby(keys, sort=False)  # in the order of runs.csv: best accuracy first
    table = groups.size().rename("n").to_frame()
    table["runs"] = keyed.sort_values("repeat").groupby(keys, sort=False)["run"].agg(";".join)
    table["experiments"] = groups["experiments"].first()
    timed = keyed[TIMED_COLUMNS].astype(float).groupby([keyed[key] for key in keys], sort=False)
    for name, statistic in STATISTICS.items():
        table = table.join(statistic(timed).add_suffix(f"_{name}"))
    # A diverged repeat counts in the time to a target too: it never reached it (infinitely slow).
    counted = runs[runs["status"].isin(TIMED_TO_TARGETS)]
    counted = counted.astype({key: object for key in keys}).fillna({key: "-" for key in keys})
    table = table.join(target_statistics(counted, keys))
    table["test_accuracy_median"] = groups["test_accuracy"].median()
    # How compilation was measured (train.compile_ahead), for the key results: apart from the
    # train phase, or inside its first epoch, with that epoch's excess over the steady epoch.
    if "compile_measured" in keyed:
        table["compile_measured"] = groups["compile_measured"].first()
        seconds = pd.to_numeric(keyed["compile_in_first_epoch_s"], errors="coerce")
        table["compile_in_first_epoch_s_median"] = seconds.groupby(
            [keyed[k] for k in keys], sort=False
        ).median()
    # Same seed, same numbers: repeats must agree exactly; where they do not, say so.
    table["identical_results"] = (groups["test_accuracy"].nunique() == 1) & (
        groups["test_loss"].nunique() == 1
    )
    table["noisy"] = groups["time_train"].agg(is_noisy).astype(bool)
    table["overlapped"] = groups["overlap_seconds"].agg(lambda seconds: bool(seconds.gt(0).any()))
    # Named columns, in order: with no finished run the table still has its header (the report reads it).
    columns = [*keys, "n", "runs", "experiments"]
    columns += [f"{column}_{name}" for column in TIMED_COLUMNS for name in STATISTICS]
    columns += list(target_statistics(keyed.iloc[:0], keys).columns)
    columns += [
        "test_accuracy_median",
        "compile_measured",
        "compile_in_first_epoch_s_median",
        "identical_results",
        "noisy",
        "overlapped",
    ]
    table = table.reset_index() if len(table) else pd.DataFrame(columns=columns)
    return table.reindex(columns=columns).astype({key: object for key in keys}).replace({"-": None})


# The repeats that count in the time to a target: those that finished, and those that diverged
# (a result, which never reaches a target). A failed or crashed run is retried, not a result.
TIMED_TO_TARGETS = ("ok", "diverged")


def target_statistics(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per setting (`keys`) and target of runs.csv: median [q1-q3] of time_to and wall_to and the
    median epochs_to over its repeats, counting a repeat that never reached the target as
    infinitely slow (so a median exists only where most repeats reached it), how many
    reached it (reached_<t>) and of how many repeats (n_to_targets)."""
    by = [runs[key] for key in keys]
    targeted = any(column.startswith("time_to_") for column in runs.columns)
    columns = {"n_to_targets": runs.groupby(by, sort=False).size()} if targeted else {}
    for column in [c for c in runs.columns if c.startswith("time_to_")]:
        target = column.removeprefix("time_to_")
        for clock in ("time_to", "wall_to"):
            seconds = runs[f"{clock}_{target}"].astype(float).fillna(np.inf).groupby(by, sort=False)
            with np.errstate(invalid="ignore"):  # between two infinities: NaN, shown empty
                for name in ("median", "q1", "q3"):
                    columns[f"{clock}_{target}_{name}"] = STATISTICS[name](seconds)
        epochs = runs[f"epochs_to_{target}"].astype(float).fillna(np.inf).groupby(by, sort=False)
        columns[f"epochs_to_{target}_median"] = epochs.median()
        columns[f"reached_{target}"] = runs[column].notna().groupby(by, sort=False).sum().astype(int)
    return _finite_or_none(pd.DataFrame(columns))


def _finite_or_none(table: pd.DataFrame) -> pd.DataFrame:
    """Infinite or NaN statistics (most repeats never reached the target) become empty."""
    for column in table.columns:
        if not column.startswith(("reached_", "n_to_targets")):
            values = table[column].astype(float)
            table[column] = values.where(np.isfinite(values))
    return table


# A failed or crashed run trains again at the next call; a diverged one is a result (the same
# settings diverge again), kept.
RETRIED = ("failed", "crashed")


def read_metrics(path) -> dict | None:
    """A run's metrics.json, or None where the job left none (or left something unreadable)."""
    try:
        metrics = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def runs_metrics(names, runs_dir) -> dict[str, dict | None]:
    """{run: its metrics.json (read_metrics)} for the runs among `names`."""
    return {name: read_metrics(Path(runs_dir, name, "metrics.json")) for name in names}


def runs_not_ok(metrics_by_run: dict[str, dict | None], belongs) -> dict[str, str]:
    """{run: status} for the runs whose metrics.json (runs_metrics) says they did not end ok,
    and whose call (the token of the snakemake call that trained them) `belongs`."""
    return {
        name: str(metrics.get("status"))
        for name, metrics in metrics_by_run.items()
        if metrics is not None and metrics.get("status") != "ok" and belongs(metrics.get("call"))
    }


def forget_unfinished(metrics_by_run, runs_dir, runs_csv, belongs) -> dict[str, str]:
    """Forget (see forget_runs) the failed and crashed runs among runs_not_ok(...); return them all."""
    not_ok = runs_not_ok(metrics_by_run, belongs)
    forget_runs([name for name, status in not_ok.items() if status in RETRIED], runs_dir, runs_csv)
    return not_ok


def forget_runs(runs: list[str], runs_dir, runs_csv) -> None:
    """Make the next call of the workflow train `runs` again.

    A run that did not end ok still has its outputs, so that the report can show it. Removing
    its metrics.json (the file that marks completion) and dating runs.csv back makes Snakemake
    train it again: Snakemake does not look for a missing intermediate file behind an
    up-to-date output, so the summary must look stale too.
    """
    for run in runs:
        Path(runs_dir, run, "metrics.json").unlink(missing_ok=True)
    if runs and Path(runs_csv).exists():
        os.utime(runs_csv, (0, 0))
