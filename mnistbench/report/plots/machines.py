"""The machine as a dimension: the tables, figure and key results of the merged report
(mnistbench.report.merge's tables), and the machines table that compare.html shares.

Every text here may come from another machine's result set: tables go out through pandas or
itables (which escape), and the machines table and key results escape each value themselves.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistbench.report.plots.axes import log_axis
from mnistbench.report.plots.figures import MOST_ROWS, row_height
from mnistbench.report.plots.labels import model_label, spread, value_text
from mnistbench.report.plots.time_to_accuracy import percent, sorting_target, targets_in
from mnistbench.results.ratios import TOO_FEW

# A figure draws at most this many machines (ten colours tell that many lines apart); the table
# has every machine.
MOST_MACHINES = 10
CONFIDENCE = 0.95


def read_merged(merged_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """merge's settings and machines tables; machine names as text, also where they are numbers
    (sets named 2024 and 2025)."""
    names = {"machine": str, "vs": str}
    return tuple(
        pd.read_csv(Path(merged_dir) / f"{table}.csv", dtype=names) for table in ("settings", "machines")
    )


def machines_frame(machines: dict[str, pd.Series]) -> pd.DataFrame:
    """A row per attribute, a column per machine ("-" where a machine has no value), and whether
    the machines differ in it."""
    attributes = list(dict.fromkeys(a for facts in machines.values() for a in facts.index))
    rows = []
    for attribute in attributes:
        values = {name: facts.get(attribute, np.nan) for name, facts in machines.items()}
        texts = {name: "-" if pd.isna(value) else value_text(value) for name, value in values.items()}
        rows.append({"attribute": attribute, **texts, "differs": len(set(texts.values())) > 1})
    return pd.DataFrame(rows, columns=["attribute", *machines, "differs"])


def machines_html(frame: pd.DataFrame) -> str:
    """machines_frame as an HTML table, rows that differ of class "differs", every value escaped."""
    names = [c for c in frame.columns if c not in ("attribute", "differs")]
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in ["attribute", *names])
    rows = []
    for row in frame.to_dict("records"):
        cells = "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in ["attribute", *names])
        marked = ' class="differs"' if row["differs"] else ""
        rows.append(f"<tr{marked}>{cells}</tr>")
    return f'<table class="machines"><tr>{head}</tr>{"".join(rows)}</table>'


def machines_table(machines: pd.DataFrame) -> pd.DataFrame:
    """merge's machines.csv as machines_frame: one column per machine, its facts, runs and code."""
    shown = machines.drop(columns=["reference"], errors="ignore").set_index("machine")
    return machines_frame({name: facts for name, facts in shown.iterrows()})


def shared(settings: pd.DataFrame) -> pd.DataFrame:
    """The rows of settings that two or more machines ran."""
    return settings[settings["verdict"] != "only on this machine"]


def ratio_table(settings: pd.DataFrame) -> pd.DataFrame:
    """One row per setting and machine that two or more machines ran, as the report's dimension
    tables: each machine's median [q1-q3] (n) of the train phase, steady epoch and time to the
    target most settings reached, its ratio to vs with the bootstrap interval, and the verdict."""
    rows = shared(settings)
    target = sorting_target(rows, targets_in(rows)) if len(rows) else None
    table = pd.DataFrame(
        {"setting": rows["setting"], "machine": rows["machine"], "vs": rows["vs"], "verdict": rows["verdict"]}
    )
    metrics = [("time_train", "train phase"), ("time_epoch_steady", "steady epoch")]
    metrics += [(f"time_to_{target}", f"to {percent(target)}")] if target else []
    for metric, name in metrics:
        table[name] = [_spread(row, metric) for row in rows.to_dict("records")]
        ratio = rows[f"{metric}_ratio"].round(2)
        table[f"{name} ratio"] = ratio.astype(object).where(ratio.notna(), None)  # blank, not NaN
        table[f"{name} {CONFIDENCE:.0%} interval"] = _intervals(rows, metric)
    accuracy = rows["test_accuracy_median"]
    table["accuracy"] = [("-" if pd.isna(a) else f"{a:.2%}") for a in accuracy]
    return table.reset_index(drop=True)


def _spread(row: dict, metric: str) -> str:
    if metric.startswith("time_to_") and pd.isna(row[f"{metric}_median"]):
        return "never"
    return spread(row, metric)


def _intervals(rows: pd.DataFrame, metric: str) -> list[str]:
    reference = rows["machine"] == rows["vs"]
    low, high = rows[f"{metric}_ratio_low"], rows[f"{metric}_ratio_high"]
    return [
        "reference" if is_reference else "-" if pd.isna(a) else f"{a:.2f}-{b:.2f}"
        for is_reference, a, b in zip(reference, low, high, strict=True)
    ]


def only_one_machine(settings: pd.DataFrame) -> pd.DataFrame:
    """The settings that one machine ran, with that machine and its train phase."""
    rows = settings[settings["verdict"] == "only on this machine"]
    return pd.DataFrame(
        {
            "setting": rows["setting"],
            "machine": rows["machine"],
            "train phase": [spread(row, "time_train") for row in rows.to_dict("records")],
        }
    ).reset_index(drop=True)


def shown_settings(settings: pd.DataFrame, most: int = MOST_ROWS) -> tuple[pd.DataFrame, str]:
    """The rows of at most `most` settings for the figure, and a phrase saying which: those that
    the most machines ran, of them the fastest on their vs machine."""
    rows = shared(settings)
    groups = rows[rows["machine"] == rows["vs"]].sort_values(
        ["machines", "time_train_median"], ascending=[False, True]
    )
    chosen = groups["setting"].head(most)
    total = len(groups)
    which = (
        f"all {total} settings that two or more machines ran"
        if total <= most
        else f"{len(chosen)} of the {total} settings that two or more machines ran: those that the most "
        "machines ran, the fastest first (the table has every setting)"
    )
    return rows[rows["setting"].isin(chosen)], which


def machine_figure(settings: pd.DataFrame, order: list[str], most: int = MOST_ROWS):
    """Train phase and its ratio to the reference per setting (rows, the settings of shown_settings)
    with one line per machine (at most MOST_MACHINES, in the sets' order): each point a median, its bar
    the repeats' quartiles or the ratio's bootstrap interval. Returns (figure, caption), or (None,
    why) where no two machines ran a setting."""
    rows, which = shown_settings(settings, most)
    if settings.empty:
        return None, "No machine has a finished run, so there is nothing to compare."
    if rows.empty:
        return None, "No setting was run by two or more machines, so there is nothing to compare."
    machines = [name for name in order if name in set(rows["machine"])][:MOST_MACHINES]
    reference_rows = rows[rows["machine"] == rows["vs"]].sort_values("time_train_median")
    labels = list(dict.fromkeys(reference_rows["setting"]))
    figure, axes = plt.subplots(1, 2, figsize=(13, row_height(len(labels)) + 0.6), sharey=True, squeeze=True)
    colours = sns.color_palette("colorblind", 10)
    offsets = np.linspace(-0.25, 0.25, len(machines)) if len(machines) > 1 else [0.0]
    for index, machine in enumerate(machines):
        mine = rows[rows["machine"] == machine].set_index("setting").reindex(labels)
        y = np.arange(len(labels)) + offsets[index]
        style = dict(color=colours[index % 10], marker="os^D"[index // 10 % 4], label=machine, capsize=2)
        _bars(axes[0], y, mine, "time_train_median", "time_train_q1", "time_train_q3", style)
        _bars(axes[1], y, mine, "time_train_ratio", "time_train_ratio_low", "time_train_ratio_high", style)
    axes[0].set(yticks=range(len(labels)), yticklabels=labels, xlabel="train phase (s)")
    axes[1].set(xlabel="train phase / vs machine's (below 1 is faster)")
    axes[1].axvline(1, color="black", lw=1)
    for ax in axes:
        log_axis(ax, "x")
    axes[0].invert_yaxis()  # the fastest setting on top (the axes share y: once for both)
    figure.legend(
        loc="lower center",
        ncol=min(5, len(machines)),
        fontsize="small",
        frameon=False,
        handles=axes[0].get_legend_handles_labels()[0],
    )
    figure.tight_layout(rect=(0, 0.6 / (row_height(len(labels)) + 0.6), 1, 1))
    drawn = len(machines)
    total = settings["machine"].nunique()
    machines_said = f"all {total} machines" if drawn == total else f"the first {drawn} of {total} machines"
    caption = (
        f"*Train phase per setting, one line per machine ({machines_said}), {which}.* Left: each point "
        "is the median of the machine's repeats, its bar their interquartile range. Right: the ratio "
        f"of that median to the vs machine's (the reference where it ran the setting), its bar the "
        f"{CONFIDENCE:.0%} bootstrap interval (none with fewer than 2 repeats on a side)."
    )
    return figure, caption


def _bars(ax, y, rows: pd.DataFrame, middle: str, low: str, high: str, style: dict) -> None:
    value = rows[middle].to_numpy(float)
    below = np.nan_to_num(value - rows[low].to_numpy(float), nan=0.0).clip(min=0)
    above = np.nan_to_num(rows[high].to_numpy(float) - value, nan=0.0).clip(min=0)
    ax.errorbar(value, y, xerr=[below, above], **style)


def key_results(settings: pd.DataFrame, machines: pd.DataFrame) -> list[str]:
    """HTML lines: per machine its train phase against the reference's; per model the fastest
    machine to each target and how much faster than the reference it is; the sets read from an
    older version; how many settings one machine ran. Every value escaped."""
    reference = machines.loc[machines["reference"].astype(bool), "machine"].iloc[0]
    lines = _finished_lines(settings, machines, reference)
    lines += _fastest_lines(settings, reference) if len(settings) else []
    for row in machines.to_dict("records"):
        lines += _older_line(row)
    alone = only_one_machine(settings)
    if len(alone):
        counts = alone["machine"].value_counts()
        lines.append(
            f"<b>Run by one machine only</b>: {len(alone)} settings ("
            + ", ".join(f"{_e(name)} {count}" for name, count in counts.items())
            + "), listed below; they have no ratio."
        )
    return lines


def _finished_lines(settings: pd.DataFrame, machines: pd.DataFrame, reference: str) -> list[str]:
    """Per machine its train phase against the reference's; where a machine has no finished run, that
    (not that it ran nothing the reference ran); where none has, that there is nothing to compare."""
    ok = dict(zip(machines["machine"], machines["runs_ok"], strict=True))
    ran = dict(zip(machines["machine"], machines["runs"], strict=True))
    if settings.empty:  # settings holds the settings with a finished run
        counts = ", ".join(f"{_e(name)} {ok[name]} of {ran[name]}" for name in machines["machine"])
        return [
            f"<b>No machine has a finished run</b> (runs ended ok: {counts}), so there is nothing to compare."
        ]
    lines = []
    for name in machines["machine"]:
        if not ok[name]:
            role, after = ("the reference, ", "the ratios are to each setting's first machine")
            role, after = (role, after) if name == reference else ("", "no ratio")
            lines.append(f"<b>{_e(name)}</b> {role}has no finished run (0 of {ran[name]} ended ok): {after}.")
        elif name != reference and ok[reference]:
            lines.append(_machine_line(settings, name, reference))
    return lines


def _older_line(row: dict) -> list[str]:
    """A set made by an older version: the columns it lacked, and how they were read."""
    said = []
    if isinstance(row.get("defaulted_columns"), str):
        said.append(
            f"no column of these settings, read as the defaults its runs used: {_e(row['defaulted_columns'])}"
        )
    if isinstance(row.get("missing_columns"), str):
        said.append(f"no column {_e(row['missing_columns'])}, read as empty")
    if not said:
        return []
    return [
        f"<b>{_e(row['machine'])}</b> was made by an older version of the workflow: " + "; ".join(said) + "."
    ]


def _e(value) -> str:
    return html.escape(str(value))


def _machine_line(settings: pd.DataFrame, name: str, reference: str) -> str:
    rows = settings[(settings["machine"] == name) & (settings["vs"] == reference)]
    if rows.empty:
        return f"<b>{_e(name)}</b> ran no setting that {_e(reference)} ran: no ratio to the reference."
    ratios = rows["time_train_ratio"].dropna()
    ratio = float(np.median(ratios)) if len(ratios) else np.nan
    verdicts = rows["verdict"].value_counts()
    counted = ", ".join(f"{verdicts.get(v, 0)} {v}" for v in ("faster", "same", "slower"))
    if verdicts.get(TOO_FEW, 0):  # no interval: neither same nor different
        counted += f", {verdicts[TOO_FEW]} with {TOO_FEW} to tell (fewer than 2 on a side)"
    if np.isnan(ratio) or round(ratio, 2) == 1:
        pace = "as fast"
    else:
        pace = f"{1 / ratio:.2f}x faster" if ratio < 1 else f"{ratio:.2f}x slower"
    return (
        f"<b>{_e(name)}</b> against {_e(reference)}: train phase {pace} (median ratio {ratio:.2f} over "
        f"the {len(rows)} settings both ran; {counted})."
    )


def _fastest_lines(settings: pd.DataFrame, reference: str) -> list[str]:
    """Per model, per target some machine reached: the machine and setting first there, its time,
    and its ratio to the reference's time for the same setting with the interval. Where one machine
    is first to every target, one sentence for them all (_one_winner)."""
    lines = []
    models = model_label(settings, without=("hidden_units", "activation"))
    for model, rows in settings.groupby(models, sort=True):
        firsts = []
        for target in targets_in(rows):
            column = f"time_to_{target}_median"
            reached = rows.dropna(subset=[column])
            if not reached.empty:
                firsts.append((target, reached.loc[reached[column].idxmin()]))
        if len(firsts) > 1 and len({best["machine"] for _, best in firsts}) == 1:
            lines.append(f"<b>Fastest machine, {_e(model)}</b>: {_one_winner(firsts, reference)}.")
        elif firsts:
            parts = [f"to {percent(t)} {_fastest_phrase(best, t, reference)}" for t, best in firsts]
            lines.append(f"<b>Fastest machine, {_e(model)}</b>: " + "; ".join(parts) + ".")
    return lines


def _one_winner(firsts: list[tuple[str, pd.Series]], reference: str) -> str:
    """ "big-box to every target, 90-99%: 2.50x faster than ws [2.30-2.72] (the median over the
    targets of its ratio and interval ends; 0.51-3.02 s)" """
    machine = firsts[0][1]["machine"]
    span = f"{float(firsts[0][0]) * 100:g}-{percent(firsts[-1][0])}"
    seconds = [best[f"time_to_{target}_median"] for target, best in firsts]
    said = f"<b>{_e(machine)}</b> to every target, {span} ({min(seconds):.2f}-{max(seconds):.2f} s)"
    if machine == reference:
        return said + ", the reference itself"
    ratios = pd.DataFrame(
        [
            [best[f"time_to_{target}_ratio{part}"] for part in ("", "_low", "_high")]
            for target, best in firsts
            if best["vs"] == reference
        ],
        columns=["ratio", "low", "high"],
        dtype=float,
    )
    if ratios["ratio"].isna().all():
        return said + f", which {_e(reference)} did not reach with those settings"
    ratio, low, high = ratios.median()  # the middle target's: one figure for all of them
    interval = "" if pd.isna(low) or pd.isna(high) else f" [{1 / high:.2f}-{1 / low:.2f}]"
    over = f"the median over {ratios['ratio'].notna().sum()} targets"
    return said + f": {1 / ratio:.2f}x faster than {_e(reference)}{interval} ({over})"


def _fastest_phrase(best: pd.Series, target: str, reference: str) -> str:
    metric = f"time_to_{target}"
    said = f"<b>{_e(best['machine'])}</b> ({_e(best['setting'])}, {best[f'{metric}_median']:.2f} s)"
    if best["machine"] == reference:
        return said + ", the reference itself"
    if best["vs"] != reference or pd.isna(best[f"{metric}_ratio"]):
        return said + f", which {_e(reference)} did not reach with that setting"
    ratio, low, high = (best[f"{metric}_ratio{part}"] for part in ("", "_low", "_high"))
    interval = "" if pd.isna(low) else f", {CONFIDENCE:.0%} interval {1 / high:.2f}-{1 / low:.2f}x"
    return said + f", {1 / ratio:.2f}x faster than {_e(reference)}{interval}"
