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
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mnistbench.files import atomic_write, write_csv
from mnistbench.grid import ADDED_SETTINGS, SETTINGS, added_tags

log = logging.getLogger("mnistbench")

# What is compared, per setting: the train phase decides the verdict.
METRICS = ("time_train", "time_epoch_steady", "time_job", "test_accuracy")
NEEDED = (*SETTINGS, "repeat", "status", *METRICS)


class BaselineError(ValueError):
    """A baseline that cannot be compared, phrased as one line."""


# A baseline is someone else's folder: its tables are read only when they are regular files of
# a sane size. A runs table takes a few hundred bytes a run, so 64 MiB is far beyond any grid,
# while a wrong or hostile file is refused from its size alone, before any of it is read.
MAX_TABLE_BYTES = 64 * 2**20
# Columns that must hold numbers or nothing: the metrics compared and the numeric settings.
NUMERIC = (*METRICS, "repeat", "hidden_units", "learning_rate", "batch_size", "epochs", "seed")
KEY = "config key 'compare.baseline'"
LINK = "is a symbolic link; a baseline must hold regular files only"


def _refusal(path, reason: str) -> BaselineError:
    return BaselineError(f"{KEY}: {path} {reason}")


def baseline_files(path) -> dict[str, Path]:
    """The summary tables of a result set: PATH is a `results/` folder or its `summary/`."""
    path = Path(path)
    if not path.exists():
        raise _refusal(path, "does not exist")
    for folder in (path / "summary", path):
        if os.path.lexists(folder / "runs.csv"):  # a link too: read_table refuses it by name
            return {"runs": folder / "runs.csv", "machine": folder / "machine.csv"}
    raise _refusal(path, "holds no runs (no summary/runs.csv or runs.csv)")


def _open_below(root: Path, path: Path) -> int | None:
    """A descriptor of PATH, None when it is absent. Each step below ROOT is opened relative to the
    last one without following links, so that none can be swapped for a link between check and use."""
    parts, descriptors, step = path.relative_to(root).parts, [], root
    try:
        descriptors.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
        for depth, name in enumerate(parts, start=1):
            step = root.joinpath(*parts[:depth])
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat refuses it next.
            kind = os.O_NONBLOCK if depth == len(parts) else os.O_DIRECTORY
            descriptors.append(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | kind, dir_fd=descriptors[-1]))
        return descriptors.pop()
    except FileNotFoundError:
        return None
    except OSError as error:  # a link fails with ELOOP, or ENOTDIR for a folder: say which it was
        link = step != root and os.path.islink(step)
        raise _refusal(step, LINK if link else f"cannot be opened ({error.strerror})") from None
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _read_capped(path: Path, descriptor: int) -> bytes:
    try:
        info, data = os.fstat(descriptor), b""
        if not stat.S_ISREG(info.st_mode):
            raise _refusal(path, "is not a regular file; a baseline must hold regular files only")
        if info.st_size <= MAX_TABLE_BYTES:  # a huge file is refused without reading any of it
            with os.fdopen(descriptor, "rb", closefd=False) as handle:
                data = handle.read(MAX_TABLE_BYTES + 1)  # it may have grown since fstat
    finally:
        os.close(descriptor)
    if max(info.st_size, len(data)) > MAX_TABLE_BYTES:
        raise _refusal(
            path, f"is larger than {MAX_TABLE_BYTES // 2**20} MiB, the most a baseline table may be"
        )
    return data


def _parse(path: Path, data: bytes) -> pd.DataFrame:
    try:
        table = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        raise _refusal(path, "is empty, not a CSV table") from None
    except pd.errors.ParserError as error:  # pandas names the line (the header is line 1)
        reason = " ".join(str(error).split()).removeprefix("Error tokenizing data. C error: ")
        raise _refusal(path, f"is not a CSV table ({reason})") from None
    except UnicodeDecodeError as error:
        raise _refusal(path, f"is not UTF-8 text (byte {error.start})") from None
    if not isinstance(table.index, pd.RangeIndex):  # pandas made the first column the index
        raise _refusal(path, "has more fields in every data row than in its header")
    return table


def _refuse_first(path: Path, values: pd.Series, bad: pd.Series, reason: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = "" if pd.isna(values.iloc[row]) else str(values.iloc[row])[:40]
        raise _refusal(path, f"data row {row + 1} (1-based), column {values.name!r}: {value!r} {reason}")


def _check_values(path: Path, table: pd.DataFrame) -> pd.DataFrame:
    """TABLE with its numeric columns as numbers, once every value there is a number or empty."""
    for column in (column for column in NUMERIC if column in table):
        numbers = pd.to_numeric(table[column], errors="coerce")
        _refuse_first(path, table[column], numbers.isna() & table[column].notna(), "is not a number")
        table[column] = numbers
    if "status" in table:
        status = table["status"]
        number = pd.to_numeric(status, errors="coerce").notna()
        _refuse_first(path, status, status.isna() | number, "is not a status (text such as ok)")
    return table


def read_table(root, path) -> pd.DataFrame | None:
    """The CSV table PATH inside the baseline folder ROOT (None when absent), read only as a regular
    file with no link at any level below ROOT, within MAX_TABLE_BYTES, every row checked."""
    descriptor = _open_below(Path(root), Path(path))
    return None if descriptor is None else _check_values(path, _parse(path, _read_capped(path, descriptor)))


def read_baseline(path) -> dict[str, pd.DataFrame]:
    """The baseline's runs and machine tables (machine empty when absent), checked whole."""
    files = baseline_files(path)
    runs = read_table(path, files["runs"])
    if runs is None:  # gone since baseline_files looked
        raise _refusal(files["runs"], "does not exist")
    missing = [column for column in NEEDED if column not in runs.columns]
    if missing:
        raise _refusal(
            files["runs"], f"was made by an incompatible version of the workflow (no column {missing[0]!r})"
        )
    if runs.empty:
        raise _refusal(files["runs"], "holds no runs")
    machine = read_table(path, files["machine"])
    return {"runs": runs, "machine": pd.DataFrame() if machine is None else machine}


def check_baseline(path) -> dict[str, Path]:
    """The baseline's tables, once all of them are read and known to be comparable (BaselineError
    otherwise): this runs before any job, so that a bad baseline never costs a training."""
    read_baseline(path)
    return baseline_files(path)


def _text(value) -> str:
    """A setting's value as the same text on both sides: CSV reads 64 as 64.0 next to a NaN."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "-" if pd.isna(value) else str(value)


def _settings(runs: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    finished = runs[runs["status"] == "ok"].copy()
    for key in SETTINGS:
        finished[key] = finished[key].map(_text)
    return {key: group for key, group in finished.groupby(list(SETTINGS), sort=False)}


def ratio_interval(
    new: np.ndarray, base: np.ndarray, confidence: float, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval of median(new) / median(base); NaN with fewer than 2 on a side."""
    if len(new) < 2 or len(base) < 2:
        return np.nan, np.nan
    if np.ptp(new) == 0 and np.ptp(base) == 0:  # no spread at all: the ratio is exact
        ratio = np.median(new) / np.median(base)
        return ratio, ratio
    result = stats.bootstrap(
        (new, base),
        lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
        confidence_level=confidence,
        method="percentile",
        n_resamples=2000,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def verdict(ratio: float, low: float, high: float, threshold: float) -> str:
    """faster / slower only when the interval excludes 1 and the change passes the threshold."""
    if np.isnan(low):
        return "same"  # too few repeats to tell: see the n columns
    if high < 1 and ratio <= 1 / threshold:
        return "faster"
    if low > 1 and ratio >= threshold:
        return "slower"
    return "same"


COMPARED = ("faster", "slower", "same")
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


def setting_label(row) -> str:
    network = row["model"] if row["model"] != "mlp" else f"mlp{row['hidden_units']}-{row['activation']}"
    training = f"{row['optimizer']} b{row['batch_size']} e{row['epochs']} s{row['seed']}"
    # The hardware settings away from their defaults, so that no two settings read the same.
    hardware = added_tags({key: row[key] for key in ADDED_SETTINGS if key in row and row[key] != "-"})
    return " ".join([row["dataset"], network, training, row["backend"], *hardware])


def _ratio_plot(table: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table[table["verdict"].isin(COMPARED)].sort_values("time_train_ratio")
    figure, axes = plt.subplots(figsize=(9, max(2.5, 0.4 * len(data) + 1)))
    labels = [setting_label(row) for _, row in data.iterrows()]
    ratio = data["time_train_ratio"].to_numpy()
    low = np.where(data["time_train_ratio_low"].isna(), ratio, data["time_train_ratio_low"])
    high = np.where(data["time_train_ratio_high"].isna(), ratio, data["time_train_ratio_high"])
    colors = data["verdict"].map({"faster": "tab:green", "slower": "tab:red", "same": "0.4"})
    axes.errorbar(
        ratio, range(len(data)), xerr=[ratio - low, high - ratio], fmt="none", ecolor="0.5", capsize=3
    )
    axes.scatter(ratio, range(len(data)), c=list(colors), zorder=3)
    axes.axvline(1, color="black", lw=1)
    axes.set(xscale="log", yticks=range(len(data)), yticklabels=labels, ylabel="")
    axes.set_xlabel("train phase, this set / baseline (median, bootstrap interval); below 1 is faster")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _machines(machine: pd.DataFrame, baseline_machine: pd.DataFrame) -> str:
    ours = machine.iloc[0] if len(machine) else pd.Series(dtype=object)
    theirs = baseline_machine.iloc[0] if len(baseline_machine) else pd.Series(dtype=object)
    rows = []
    for attribute in [*ours.index, *(a for a in theirs.index if a not in ours.index)]:
        a, b = ours.get(attribute, "-"), theirs.get(attribute, "-")
        style = ' class="differs"' if str(a) != str(b) else ""
        rows.append(
            f"<tr{style}><td>{html.escape(attribute)}</td><td>{html.escape(str(b))}</td><td>{html.escape(str(a))}</td></tr>"
        )
    return "<table><tr><th>attribute</th><th>baseline</th><th>this set</th></tr>" + "".join(rows) + "</table>"


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


def write_html(
    path, table: pd.DataFrame, runs, baseline, machine, baseline_machine, baseline_path, threshold
) -> None:
    counts = table["verdict"].value_counts().to_dict()
    versions = (
        f"baseline: {', '.join(sorted(baseline['code_version'].dropna().astype(str).unique())) or '-'}; "
        f"this set: {', '.join(sorted(runs['code_version'].dropna().astype(str).unique())) or '-'}"
        if "code_version" in baseline and "code_version" in runs
        else "-"
    )
    shown = table.assign(
        setting=[
            setting_label(r) if r["verdict"] != "geometric mean" else "geometric mean"
            for _, r in table.iterrows()
        ]
    )
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
        plot = f'<img alt="train-phase ratios" src="data:image/png;base64,{_ratio_plot(table)}">'
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
excludes 1 and the ratio passes {threshold:g} (or 1/{threshold:g}); otherwise <b>same</b>.
Verdicts: {html.escape(", ".join(f"{v}: {n}" for v, n in counts.items()) or "none")}.</p>
{_nothing_to_compare(table, runs, baseline)}
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


# OWASP's advice against CSV injection: a spreadsheet runs a cell that starts with one of these
# as a formula (=HYPERLINK(...), =cmd|...), and a quote in front makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value):
    """VALUE, quoted when a spreadsheet would run it; numbers, the placeholder "-" (missing) and
    texts that are plain numbers ("-0.5") stay as they are."""
    if not isinstance(value, str) or value == "-" or not value.startswith(FORMULA_STARTS):
        return value
    return value if PLAIN_NUMBER.fullmatch(value) else f"'{value}"


def run(inputs: dict, outputs: dict, baseline_path, threshold: float, confidence: float) -> pd.DataFrame:
    baseline = read_baseline(baseline_path)
    runs, machine = pd.read_csv(inputs["runs"]), pd.read_csv(inputs["machine"])
    table = compare(runs, baseline["runs"], threshold, confidence)
    write_csv(outputs["table"], table.map(spreadsheet_safe))
    write_html(
        outputs["html"], table, runs, baseline["runs"], machine, baseline["machine"], baseline_path, threshold
    )
    log.info("compared with %s: %s", baseline_path, table["verdict"].value_counts().to_dict())
    return table
