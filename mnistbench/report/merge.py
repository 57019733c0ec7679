"""Result sets of several machines merged into one (config key `merge`), as asv's pages and
MLPerf's results tables put every system side by side: the machine is a dimension like any other.

Each set is named after its machine and read as untrusted input (result_sets, the rules of
compare's baseline). Every setting that two or more machines ran becomes one group: each
machine's medians [q1-q3] (n), and its ratio of medians to the reference machine (the one the
config names, by default the first set; the group's first machine where the reference did not
run the setting) with compare's bootstrap interval and verdict (ratios). Settings that one
machine ran are kept, as such.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mnistbench.files import write_csv
from mnistbench.grid import SETTINGS
from mnistbench.report.plots.dimensions import setting_points
from mnistbench.report.plots.labels import setting_label, setting_texts, value_text
from mnistbench.report.plots.time_to_accuracy import targets_in
from mnistbench.results.ratios import ratio_intervals, verdict
from mnistbench.results.result_sets import (
    ResultSetError,
    Where,
    default_values,
    read_set,
    set_files,
    spreadsheet_safe_table,
    table_key,
)

log = logging.getLogger("mnistbench")

KEY = "config key 'merge.sets'"
# A set must have these; the columns that older versions of the workflow did not write (the
# hardware settings, the times to targets...) are read as empty, and said so once per set.
REQUIRED = ("status", "time_train")
EXPECTED = (*SETTINGS, "repeat", "time_epoch_steady", "test_accuracy")
# Per setting and machine: these summarised over the finished repeats, each target's time too.
TIMED = ("time_train", "time_epoch_steady")
# A machine's facts that every row of the merged tables carries, under machine.csv's names
# (its version_<package> columns follow).
FACTS = (
    "hosts",
    "cpu_model",
    "cpu_arch",
    "cores_logical",
    "cores_physical",
    "memory_gb",
    "gpu_name",
    "gpu_memory_mb",
    "gpu_driver_version",
    "os",
)
MOST_HOSTS = 4  # a cluster's set names this many hosts, then counts the rest
ONLY = "only on this machine"


def where(name: str) -> Where:
    return Where(f"config key 'merge.sets.{name}'", "a result set")


def is_this_set(path) -> bool:
    """Whether PATH is this workflow's own results (or their summary): built by this call, so
    read in the merge job only, never before it."""
    return Path(path).resolve() in (Path("results").resolve(), Path("results/summary").resolve())


def named_sets(sets: dict) -> dict[str, str]:
    """The sets under their names as text: YAML reads `2024:` as a number, and a name is a label."""
    named: dict[str, str] = {}
    for name, path in sets.items():
        if str(name) in named:
            raise ResultSetError(f"{KEY} names the set {str(name)!r} twice (once as a number)")
        named[str(name)] = path
    return named


def check_config(merge: dict) -> None:
    sets = named_sets(merge["sets"])
    reference = None if merge["reference"] is None else str(merge["reference"])
    if len(sets) == 1:
        raise ResultSetError(f"{KEY} names one result set ({next(iter(sets))}); a merge needs two or more")
    if reference is not None and reference not in sets:
        raise ResultSetError(
            f"config key 'merge.reference': {reference!r} is not one of the sets ({', '.join(sets)})"
        )


def runs_table_of(name: str, path) -> Path:
    """The set's runs table: this workflow's own is the one this call builds."""
    return Path("results/summary/runs.csv") if is_this_set(path) else set_files(path, where(name))["runs"]


def check_distinct(sets: dict[str, str]) -> None:
    """Each set named once: the same folder under two names, through a link or as a folder and its
    summary/ would be compared with itself."""
    seen: dict[tuple, str] = {}
    for name, path in sets.items():
        key = table_key(runs_table_of(name, path))
        if key in seen:
            first = seen[key]
            raise where(name).refusal(
                path, f"is the same result set as merge.sets.{first} ({sets[first]}); name each set once"
            )
        seen[key] = name


def check_sets(merge: dict) -> None:
    """Before any job: the config, each set named once, and every set but this one read whole
    (ResultSetError names the first bad one), so that a bad set never costs a training."""
    check_config(merge)
    sets = named_sets(merge["sets"])
    check_distinct(sets)
    for name, path in sets.items():
        if not is_this_set(path):
            read_set(path, where(name), REQUIRED)


def read_sets(sets: dict[str, str]) -> dict[str, dict]:
    return {name: read_set(path, where(name), REQUIRED) for name, path in sets.items()}


def missing_columns(sets: dict[str, dict]) -> dict[str, list[str]]:
    """Per set, the columns it lacks that the workflow writes (or another set has): an older version's."""
    targets = sorted({c for read in sets.values() for c in read["runs"] if str(c).startswith("time_to_")})
    expected = [*EXPECTED, *targets]
    return {name: [c for c in expected if c not in read["runs"]] for name, read in sets.items()}


def _distinct(table: pd.DataFrame, column: str) -> list[str]:
    if column not in table:
        return []
    return list(dict.fromkeys(value_text(v) for v in table[column] if not pd.isna(v) and str(v).strip()))


def machine_facts(runs: pd.DataFrame, machine: pd.DataFrame) -> dict:
    """The facts of the hosts that ran the set's runs (machine.csv's rows of them; where those lack
    one, such as the software versions that only the aggregating host records, any row's), the
    CPU and GPU as the runs saw them first. Several values are joined by " / "."""
    hosts = sorted(set(_distinct(runs, "host")))
    used = machine[machine["hostname"].astype(str).isin(hosts)] if "hostname" in machine else machine[:0]
    named = hosts[:MOST_HOSTS] + ([f"and {len(hosts) - MOST_HOSTS} more"] if len(hosts) > MOST_HOSTS else [])
    facts = {"hosts": ", ".join(named) or None}
    versions = sorted(c for c in machine if str(c).startswith("version_"))
    for column in [*FACTS[1:], *versions]:
        seen = _distinct(runs, column) if column in ("cpu_model", "gpu_name") else []
        found = seen or _distinct(used, column) or _distinct(machine, column)
        facts[column] = " / ".join(found) if found else None
    return facts


def merged_runs(sets: dict[str, dict], missing: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of every set with its machine and the machine's facts; and one row per machine:
    its facts, runs, code versions and what its set lacked."""
    frames, machines = [], []
    for name, read in sets.items():
        runs, facts = read["runs"], machine_facts(read["runs"], read["machine"])
        runs = runs.assign(**dict.fromkeys(missing[name], np.nan))
        runs["model"] = runs["model"].fillna("-")  # a label names the model: never empty
        runs.insert(0, "machine", name)
        # The runs' own cpu_model and gpu_name stay; the facts fill what runs.csv does not have.
        added = {key: value for key, value in facts.items() if key not in runs or runs[key].isna().all()}
        frames.append(runs.assign(**added))
        machines.append(
            {
                "machine": name,
                "runs": len(runs),
                "runs_ok": int((runs["status"] == "ok").sum()),
                "code_version": " / ".join(_distinct(runs, "code_version")) or None,
                "missing_columns": ", ".join(missing[name]) or None,
                "defaulted_columns": default_values(read["defaulted"]) or None,
                **facts,
            }
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(machines)


def setting_rows(runs: pd.DataFrame, order: list[str], reference: str, threshold: float, confidence: float):
    """One row per setting and machine: n, median [q1-q3] of the train phase, the steady epoch and the
    time to each target, the median accuracy; where two or more machines ran the setting, the ratio
    of each median to that of `vs` (the reference, or the group's first machine where the reference
    did not run it) with its bootstrap interval, and the train phase's verdict."""
    points = setting_points(runs, by=("machine",), summarised=(*TIMED, "test_accuracy"))
    if points.empty:
        return points
    points["setting"] = setting_label(points, grid=points)
    texts = setting_texts(points)  # a setting not set (NaN) groups as "-"
    group = texts.groupby(list(texts), sort=False).ngroup()
    points = points.assign(_group=group, _rank=points["machine"].map(order.index))
    points = points.sort_values(["_group", "_rank"]).reset_index(drop=True)
    points["machines"] = points.groupby("_group")["machine"].transform("size")
    with_reference = set(points.loc[points["machine"] == reference, "_group"])
    first = points.groupby("_group")["machine"].transform("first")
    points["vs"] = np.where(points["_group"].isin(with_reference), reference, first)
    points.loc[points["machines"] < 2, "vs"] = None
    position = {key: i for i, key in enumerate(zip(points["_group"], points["machine"], strict=True))}
    vs_row = np.array(
        [position.get((g, v), -1) for g, v in zip(points["_group"], points["vs"], strict=True)], dtype=int
    )
    compared = (vs_row >= 0) & (vs_row != np.arange(len(points)))
    points["n_vs"] = np.where(vs_row >= 0, points["n"].to_numpy()[vs_row], np.nan)
    metrics = [*TIMED, *(f"time_to_{target}" for target in targets_in(points))]
    for metric in metrics:
        _add_ratio(points, metric, vs_row, compared, confidence)
    points["test_accuracy_vs_median"] = np.where(
        vs_row >= 0, points["test_accuracy_median"].to_numpy()[vs_row], np.nan
    )
    points["verdict"] = [
        ONLY if pd.isna(vs) else "reference" if not is_compared else verdict(ratio, low, high, threshold)
        for vs, is_compared, ratio, low, high in zip(
            points["vs"],
            compared,
            points["time_train_ratio"],
            points["time_train_ratio_low"],
            points["time_train_ratio_high"],
            strict=True,
        )
    ]
    return points


def _add_ratio(points: pd.DataFrame, metric: str, vs_row: np.ndarray, compared: np.ndarray, confidence):
    """metric_vs_median, metric_ratio and its interval (low, high) where the row is compared; the
    time to a target has an interval only where every repeat on both sides reached it."""
    median = points[f"{metric}_median"].to_numpy(float)
    points[f"{metric}_vs_median"] = np.where(vs_row >= 0, median[vs_row], np.nan)
    points[f"{metric}_ratio"] = np.where(compared, median / points[f"{metric}_vs_median"], np.nan)
    points.loc[(vs_row >= 0) & ~compared, f"{metric}_ratio"] = 1.0
    values = points[f"{metric}_values"].to_numpy()
    finite = [np.isfinite(repeats).all() for repeats in values]
    rows = [i for i in np.flatnonzero(compared) if finite[i] and finite[vs_row[i]]]
    low, high = np.full(len(points), np.nan), np.full(len(points), np.nan)
    if rows:
        low[rows], high[rows] = ratio_intervals([(values[i], values[vs_row[i]]) for i in rows], confidence).T
    points[f"{metric}_ratio_low"], points[f"{metric}_ratio_high"] = low, high


def settings_columns(points: pd.DataFrame, facts: list[str]) -> list[str]:
    """settings.csv's columns: the machine and setting first, then the statistics, then the facts."""
    head = ["machine", "setting", *SETTINGS, "machines", "vs", "verdict", "n", "n_vs"]
    metrics = [*TIMED, *(f"time_to_{target}" for target in targets_in(points))]
    body = [
        f"{metric}_{part}"
        for metric in metrics
        for part in ("median", "q1", "q3", "vs_median", "ratio", "ratio_low", "ratio_high")
    ]
    return [*head, *body, "test_accuracy_median", "test_accuracy_vs_median", *facts]


def merge(sets: dict[str, str], reference: str | None, threshold: float, confidence: float) -> dict:
    """The merged tables: runs, settings (per setting and machine) and machines."""
    check_config({"sets": sets, "reference": reference})
    sets = named_sets(sets)
    check_distinct(sets)
    read = read_sets(sets)
    missing = missing_columns(read)
    for name, columns in missing.items():
        _say_older(name, read[name]["defaulted"], columns)
    runs, machines = merged_runs(read, missing)
    order = list(sets)
    reference = order[0] if reference is None else str(reference)
    machines["reference"] = machines["machine"] == reference
    points = setting_rows(runs, order, reference, threshold, confidence)
    facts = [c for c in machines if c in FACTS or str(c).startswith("version_")]
    settings = points.merge(machines[["machine", *facts]], on="machine", how="left")
    # Every column also with no finished run anywhere: the page reads vs and verdict.
    settings = settings.reindex(columns=settings_columns(points, facts))
    return {"runs": runs, "settings": settings, "machines": machines}


def _say_older(name: str, defaulted: list[str], missing: list[str]) -> None:
    """Once per set made by an older version, here and in the report's key results: which columns
    it lacked, and how they were read."""
    said = []
    if defaulted:
        used = default_values(defaulted)
        said.append(f"no column {', '.join(defaulted)}: read as the defaults its runs used ({used})")
    if missing:
        said.append(f"no column {', '.join(missing)}: read as empty")
    if said:
        log.warning("merge: %s was made by an older version of the workflow (%s)", name, "; ".join(said))


def run(sets: dict[str, str], reference, threshold: float, confidence: float, outputs: dict) -> dict:
    tables = merge(sets, reference, threshold, confidence)
    for name, table in tables.items():
        write_csv(outputs[name], spreadsheet_safe_table(table))
    verdicts = tables["settings"]["verdict"].value_counts().to_dict() if len(tables["settings"]) else {}
    log.info("merged %d sets, %d runs: %s", len(sets), len(tables["runs"]), verdicts)
    return tables
