"""Two result sets compared setting by setting, as pyperf's compare_to and asv compare do for
Python benchmarks: the ratio of medians with a bootstrap confidence interval, and a verdict.

A difference counts only when it is both statistically clear (the interval excludes 1) and
larger than a threshold (asv's factor of 1.1 by default): noise on a shared machine easily
moves a median by a few percent, and such a change is not worth a verdict.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mnistbench.files import atomic_write, write_csv
from mnistbench.grid import SETTINGS
from mnistbench.report.plots.axes import log_axis
from mnistbench.report.plots.labels import setting_label, setting_texts
from mnistbench.report.plots.machines import machines_frame, machines_html
from mnistbench.results.ratios import TOO_FEW, VERDICTS, ratio_interval, verdict
from mnistbench.results.result_sets import (
    ResultSetError,
    Where,
    default_values,
    read_set,
    set_files,
    spreadsheet_safe,
    table_key,
)

log = logging.getLogger("mnistbench")

# What is compared, per setting: the train phase decides the verdict.
METRICS = ("time_train", "time_epoch_steady", "time_job", "test_accuracy")
NEEDED = (*SETTINGS, "repeat", "status", *METRICS)
BASELINE = Where("config key 'compare.baseline'", "a baseline")
# The name a bad baseline has always had here: callers catch BaselineError.
BaselineError = ResultSetError


def baseline_files(path) -> dict[str, Path]:
    """The summary tables of a result set: PATH is a `results/` folder or its `summary/`."""
    return set_files(path, BASELINE)


def read_baseline(path) -> dict:
    """The baseline's runs and machine tables (machine empty when absent), checked whole, and the
    settings it lacked, read as their defaults (result_sets.read_set)."""
    return read_set(path, BASELINE, NEEDED)


# This workflow's own runs table, the set compared with the baseline.
OURS = Path("results/summary/runs.csv")


def check_not_ours(path, ours=OURS) -> None:
    """A baseline that is this set itself (another name, a link, its summary/) compares nothing."""
    if table_key(baseline_files(path)["runs"]) == table_key(ours):
        raise BASELINE.refusal(path, f"is this result set itself ({ours}); a baseline must be another set")


def check_baseline(path, ours=OURS) -> dict[str, Path]:
    """The baseline's tables, once all of them are read and known to be comparable (BaselineError
    otherwise): this runs before any job, so that a bad baseline never costs a training."""
    check_not_ours(path, ours)
    read_baseline(path)
    return baseline_files(path)


def _settings(runs: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The finished runs per setting, keyed by the settings as text: CSV reads 64 as 64.0 next to a
    NaN, and both sides must read the same."""
    finished = runs[runs["status"] == "ok"]
    finished = finished.assign(**setting_texts(finished))
    return {key: group for key, group in finished.groupby(list(SETTINGS), sort=False)}


# The verdicts of a setting in both sets.
COMPARED = VERDICTS
ONLY = ("only in this set", "only in the baseline")


def table_columns() -> list[str]:
    """compare.csv's columns, whatever it holds: a table with no setting in both sets has them too."""
    columns = [*SETTINGS, "n", "n_baseline"]
    for metric in METRICS:
        columns += [f"{metric}_median", f"{metric}_baseline_median", f"{metric}_ratio"]
        if metric != "test_accuracy":
            columns += [f"{metric}_ratio_low", f"{metric}_ratio_high"]
    return [*columns, "verdict"]


def compare(runs: pd.DataFrame, baseline: pd.DataFrame, threshold: float = 1.1, confidence: float = 0.95):
    """compare.csv: a row per setting in both sets (ratios are this set over the baseline: below
    1 is faster), a row per setting in one set only, and the geometric mean of the ratios. Only
    finished (ok) runs count: a setting with none on a side is in the other set only."""
    ours, theirs = _settings(runs), _settings(baseline)
    rows = []
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        row = dict(zip(SETTINGS, key, strict=True))
        if key not in theirs or key not in ours:
            row["verdict"] = "only in this set" if key in ours else "only in the baseline"
            rows.append(row)
            continue
        new, base = ours[key], theirs[key]
        row.update(n=len(new), n_baseline=len(base))
        for metric in METRICS:
            new_values, base_values = (
                new[metric].dropna().to_numpy(float),
                base[metric].dropna().to_numpy(float),
            )
            row[f"{metric}_median"] = np.median(new_values) if len(new_values) else np.nan
            row[f"{metric}_baseline_median"] = np.median(base_values) if len(base_values) else np.nan
            row[f"{metric}_ratio"] = row[f"{metric}_median"] / row[f"{metric}_baseline_median"]
            if metric != "test_accuracy":  # no interval without values on both sides
                both_sides = len(new_values) and len(base_values)
                low, high = (
                    ratio_interval(new_values, base_values, confidence) if both_sides else (np.nan,) * 2
                )
                row[f"{metric}_ratio_low"], row[f"{metric}_ratio_high"] = low, high
        row["verdict"] = verdict(
            row["time_train_ratio"], row["time_train_ratio_low"], row["time_train_ratio_high"], threshold
        )
        rows.append(row)
    table = pd.DataFrame(rows, columns=table_columns())
    both = table[table["verdict"].isin(COMPARED)]
    if len(both):
        geometric = {
            "verdict": "geometric mean",
            "n": int(both["n"].sum()),
            "n_baseline": int(both["n_baseline"].sum()),
        }
        for metric in METRICS:
            ratios = both[f"{metric}_ratio"].dropna()
            geometric[f"{metric}_ratio"] = float(stats.gmean(ratios)) if len(ratios) else np.nan
        table = pd.concat([table, pd.DataFrame([geometric])], ignore_index=True)
    return table


def _ratio_plot(table: pd.DataFrame, grid: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table[table["verdict"].isin(COMPARED)].sort_values("time_train_ratio")
    figure, axes = plt.subplots(figsize=(9, max(2.5, 0.4 * len(data) + 1)))
    labels = list(setting_label(data, grid=grid))
    ratio = data["time_train_ratio"].to_numpy()
    low = np.where(data["time_train_ratio_low"].isna(), ratio, data["time_train_ratio_low"])
    high = np.where(data["time_train_ratio_high"].isna(), ratio, data["time_train_ratio_high"])
    colors = data["verdict"].map({"faster": "tab:green", "slower": "tab:red", "same": "0.4", TOO_FEW: "0.75"})
    axes.errorbar(
        ratio, range(len(data)), xerr=[ratio - low, high - ratio], fmt="none", ecolor="0.5", capsize=3
    )
    axes.scatter(ratio, range(len(data)), c=list(colors), zorder=3)
    axes.axvline(1, color="black", lw=1)
    axes.set(yticks=range(len(data)), yticklabels=labels, ylabel="")
    log_axis(axes, "x")
    axes.set_xlabel("train phase, this set / baseline (median, bootstrap interval); below 1 is faster")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _machines(machine: pd.DataFrame, baseline_machine: pd.DataFrame) -> str:
    """Both machines' attributes side by side (each table's first host), differences highlighted."""
    first = {
        name: table.iloc[0] if len(table) else pd.Series(dtype=object)
        for name, table in (("baseline", baseline_machine), ("this set", machine))
    }
    return machines_html(machines_frame(first))


def _finished(runs: pd.DataFrame) -> str:
    """ "3 of 6 runs ended ok (2 failed, 1 diverged)" """
    others = runs.loc[runs["status"] != "ok", "status"].value_counts()
    why = ", ".join(f"{count} {status}" for status, count in others.items())
    return f"{int((runs['status'] == 'ok').sum())} of {len(runs)} runs ended ok" + (
        f" ({why})" if why else ""
    )


def _nothing_to_compare(table: pd.DataFrame, runs: pd.DataFrame, baseline: pd.DataFrame) -> str:
    """Where no setting finished in both sets, a paragraph that says so, and why."""
    if table["verdict"].isin(COMPARED).any():
        return ""
    return (
        "<p><b>Nothing to compare</b>: no setting has a finished (ok) run in both sets. "
        f"This set: {html.escape(_finished(runs))}; the baseline: {html.escape(_finished(baseline))}. "
        "The table lists the settings each side finished, as <i>only in this set</i> or "
        "<i>only in the baseline</i>.</p>"
    )


def _defaulted_note(defaulted) -> str:
    if not defaulted:
        return ""
    return (
        "<p>The baseline was made by an older version of the workflow: it has no column "
        f"{html.escape(', '.join(defaulted))}, read as the defaults its runs used "
        f"({html.escape(default_values(defaulted))}).</p>"
    )


def write_html(
    path,
    table: pd.DataFrame,
    runs,
    baseline,
    machine,
    baseline_machine,
    baseline_path,
    threshold,
    defaulted=(),
) -> None:
    counts = table["verdict"].value_counts().to_dict()
    versions = (
        f"baseline: {', '.join(sorted(baseline['code_version'].dropna().astype(str).unique())) or '-'}; "
        f"this set: {', '.join(sorted(runs['code_version'].dropna().astype(str).unique())) or '-'}"
        if "code_version" in baseline and "code_version" in runs
        else "-"
    )
    # Labels name the settings that vary across both sets, as the report's name them in one.
    grid = pd.concat([runs, baseline], ignore_index=True)
    mean = table["verdict"] == "geometric mean"
    labels = pd.Series("geometric mean", index=table.index, dtype=object)
    labels[~mean] = setting_label(table[~mean], grid=grid)
    shown = table.assign(setting=labels)
    columns = (
        "setting verdict n n_baseline time_train_baseline_median time_train_median time_train_ratio "
        "time_train_ratio_low time_train_ratio_high time_epoch_steady_ratio time_job_ratio "
        "test_accuracy_baseline_median test_accuracy_median"
    ).split()
    ordered = pd.concat(
        [
            shown[shown["verdict"] != "geometric mean"].sort_values("time_train_ratio"),
            shown[shown["verdict"] == "geometric mean"],
        ]
    )
    body = ordered[[c for c in columns if c in ordered]].to_html(
        index=False, na_rep="-", float_format="{:.4g}".format, table_id="compare"
    )
    if table["verdict"].isin(COMPARED).any():
        plot = f'<img alt="train-phase ratios" src="data:image/png;base64,{_ratio_plot(table, grid)}">'
    else:
        plot = "<p>None: no setting to compare.</p>"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>mnistbench comparison</title>
<style>
body {{font-family: sans-serif; margin: 2em; max-width: 1400px}}
table {{border-collapse: collapse; font-size: 12px; margin-bottom: 1.5em}}
td, th {{border: 1px solid #ccc; padding: 3px 6px; text-align: right}}
td:first-child {{text-align: left}}
tr.differs {{background: #fff3b0}}
</style></head><body>
<h1>mnistbench comparison</h1>
<p>This result set against the baseline <code>{html.escape(str(baseline_path))}</code>, setting by setting
(matched by their run settings). Ratios are this set over the baseline: below 1 is faster. A setting is
<b>faster</b> or <b>slower</b> only when the {"bootstrap"} interval of the train phase's ratio of medians
excludes 1 and the ratio passes {threshold:g} (or 1/{threshold:g}); otherwise <b>same</b>; <b>{TOO_FEW}</b>
where a side has fewer than 2 (no interval: read n).
Verdicts: {html.escape(", ".join(f"{v}: {n}" for v, n in counts.items()) or "none")}.</p>
{_nothing_to_compare(table, runs, baseline)}
{_defaulted_note(defaulted)}
<h2>Machines and software</h2>
<p>Highlighted rows differ.</p>
{_machines(machine, baseline_machine)}
<h2>Code versions</h2>
<p>{html.escape(versions)}</p>
<h2>Settings, sorted by train-phase ratio</h2>
{body}
<h2>Ratios with their intervals</h2>
{plot}
</body></html>
"""
    atomic_write(path, lambda temporary: Path(temporary).write_text(page))


def run(inputs: dict, outputs: dict, baseline_path, threshold: float, confidence: float) -> pd.DataFrame:
    check_not_ours(baseline_path, inputs["runs"])
    baseline = read_baseline(baseline_path)
    if baseline["defaulted"]:  # said once here, and once on the page
        log.warning(
            "compare: the baseline %s was made by an older version of the workflow (no column %s): "
            "read as the defaults its runs used (%s)",
            baseline_path,
            ", ".join(baseline["defaulted"]),
            default_values(baseline["defaulted"]),
        )
    runs, machine = pd.read_csv(inputs["runs"]), pd.read_csv(inputs["machine"])
    table = compare(runs, baseline["runs"], threshold, confidence)
    write_csv(outputs["table"], table.map(spreadsheet_safe))
    write_html(
        outputs["html"],
        table,
        runs,
        baseline["runs"],
        machine,
        baseline["machine"],
        baseline_path,
        threshold,
        baseline["defaulted"],
    )
    log.info("compared with %s: %s", baseline_path, table["verdict"].value_counts().to_dict())
    return table
