"""One section of the report per swept dimension: a run setting that takes more than one value in
the grid. Its effect on time and accuracy is read only between settings that differ in it alone:
every other setting is held fixed, one group per combination of them, and nothing is averaged
across groups. Spreads are those of one setting's repeats, ratios carry the bootstrap interval of
ratios.ratio_interval (compare's statistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistbench.grid import MLP_ONLY, SETTINGS
from mnistbench.report.plots.axes import log_axis
from mnistbench.report.plots.labels import (
    finished,
    is_number,
    model_label,
    setting_label,
    setting_texts,
    varying_settings,
)
from mnistbench.report.plots.time_to_accuracy import percent, sorting_target, targets_in
from mnistbench.results.ratios import ratio_interval
from mnistbench.results.summary import TIMED_TO_TARGETS

CONFIDENCE = 0.95
# Settings whose values are numbers: ordered by value, the default ("-") first.
NUMERIC = ("hidden_units", "learning_rate", "batch_size", "epochs", "target_accuracy", "seed", "threads")
# The reference (first) value of the other settings, then the rest in this order.
VALUE_ORDER = {
    "backend": ("tensorflow", "jax", "torch"),
    "device": ("cpu", "gpu"),
    "precision": ("float32", "mixed_bfloat16", "mixed_float16"),
    "jit_compile": ("auto", "False", "True"),
    "normalize": ("scale", "none"),
    "model": ("softmax",),
}
# How a value that is not set reads (Keras's default learning rate, no target, no partition).
UNSET = {"learning_rate": "default"}
# Per setting, the repeats' values of these columns are summarised (median, quartiles).
SUMMARISED = ("time_train", "test_accuracy")


def swept_dimensions(table: pd.DataFrame) -> list[str]:
    """The settings that vary in `table` (runs or settings). hidden_units and activation count
    only where they vary among mlps: other models have none, which is the model's doing."""
    mlps = table[table["model"] == "mlp"]
    return [
        name
        for name in varying_settings(table)
        if name not in MLP_ONLY or setting_texts(mlps, [name])[name].nunique() > 1
    ]


def setting_points(runs: pd.DataFrame, by: tuple[str, ...] = (), summarised=SUMMARISED) -> pd.DataFrame:
    """One row per setting of the finished runs (per setting and value of the columns `by`, such
    as the machine): its settings, n, each `summarised` column's and each target's median, q1 and
    q3 over its repeats, and the repeats' values (for the bootstrap). A repeat that never reached a
    target counts as infinitely slow, as in settings.csv: a median exists only where most repeats
    reached it, and a quartile that never did is empty. A diverged repeat is one of those
    (summary.TIMED_TO_TARGETS); times and accuracy are the finished ones'."""
    counted = runs[runs["status"].isin(TIMED_TO_TARGETS)]
    texts = setting_texts(counted, [*by, *SETTINGS])
    ok = (counted["status"] == "ok").to_numpy()
    if not ok.any():
        return pd.DataFrame(columns=[*texts, "n"])
    setting = texts.groupby(list(texts), sort=False).ngroup()
    columns = [*summarised, *(f"time_to_{target}" for target in targets_in(counted, suffix=""))]
    values = counted[columns].astype(float)
    values.loc[~ok, list(summarised)] = np.nan  # the diverged repeats count only towards targets
    reached = [column for column in columns if column.startswith("time_to_")]
    values[reached] = values[reached].fillna(np.inf)
    grouped = values.groupby(setting, sort=False)
    points = counted.loc[~setting.duplicated(), list(texts)].set_axis(setting.drop_duplicates().to_numpy())
    points["n"] = pd.Series(ok, index=counted.index).groupby(setting, sort=False).sum()
    with np.errstate(invalid="ignore"):  # between two infinities: NaN, shown empty
        for name, statistic in (("median", 0.5), ("q1", 0.25), ("q3", 0.75)):
            summary = grouped.quantile(statistic)
            points[[f"{column}_{name}" for column in columns]] = summary.where(
                np.isfinite(summary)
            ).to_numpy()
    positions = setting.groupby(setting).indices  # setting id -> its rows, the ids 0, 1, ... in order
    for column in columns:
        repeats = values[column].to_numpy()
        kept = [repeats[positions[id_]] for id_ in points.index]
        points[f"{column}_values"] = [row[~np.isnan(row)] for row in kept]
    return points[points["n"] > 0].reset_index(drop=True)  # a setting that only diverged has none


def ordered_values(dimension: str, values) -> list[str]:
    """The distinct values (as text) in the order of the dimension: numbers ascending with the
    unset value (UNSET) first, known names in VALUE_ORDER, others alphabetically."""
    distinct = sorted(set(values))
    if dimension in NUMERIC:
        return sorted(distinct, key=lambda v: float(v) if is_number(v) else -math.inf)
    known = VALUE_ORDER.get(dimension, ())
    return sorted(distinct, key=lambda v: (known.index(v) if v in known else len(known), v))


def _ignored(dimension: str) -> tuple[str, ...]:
    """The dimension and what goes with it: the model's value is its network (hidden units and
    activation included), so a cnn and an mlp of the same other settings are one group."""
    return (dimension, *MLP_ONLY) if dimension == "model" else (dimension,)


def held_fixed_groups(points: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """The settings of `points` in groups whose settings differ in `dimension` only, where the
    group has two values of it or more: columns value (the dimension's, as text), group (the label
    of the settings held fixed), group_id; each group's rows in the dimension's order."""
    if points.empty or dimension not in points:
        return points.assign(value=[], group=[], group_id=[])
    ignored = _ignored(dimension)
    texts = setting_texts(points, [name for name in SETTINGS if name not in ignored])
    values = model_label(points) if dimension == "model" else setting_texts(points, [dimension])[dimension]
    values = values.replace("-", UNSET.get(dimension, "none"))
    framed = points.assign(
        value=values,
        group=setting_label(points, without=ignored, grid=points),
        group_id=texts.groupby(list(texts), sort=False).ngroup(),
    )
    counts = framed.groupby("group_id")["value"].transform("nunique")
    framed = framed[counts > 1]
    order = {value: rank for rank, value in enumerate(ordered_values(dimension, framed["value"]))}
    ranked = framed.assign(_rank=framed["value"].map(order)).sort_values(["group", "_rank"])
    return ranked.drop(columns="_rank")


def ratio_table(groups: pd.DataFrame, dimension: str, target: str | None) -> pd.DataFrame:
    """One row per setting of held_fixed_groups: the settings held fixed, the dimension's value, its
    train phase median [q1-q3] (n) and ratio of medians to the group's reference (its first value)
    with the bootstrap interval, the same for the time to `target`, the accuracy and its change in
    points. Threads add the speed-up and the parallel efficiency (speed-up / thread ratio)."""
    by_group: dict[int, list[dict]] = {}
    for row in groups.to_dict("records"):  # in the dimension's order within each group
        by_group.setdefault(row["group_id"], []).append(row)
    rows = [_ratio_row(dimension, row, group[0], target) for group in by_group.values() for row in group]
    return pd.DataFrame(rows)


def _ratio_row(dimension: str, row: dict, reference: dict, target: str | None) -> dict:
    out = {"setting": row["group"], dimension: row["value"], "vs": reference["value"], "n": int(row["n"])}
    out["train phase"] = _spread(row, "time_train")
    ratio, interval = _ratio(row, reference, "time_train")
    out.update({"train ratio": ratio, f"{CONFIDENCE:.0%} interval": interval})
    if dimension == "threads":
        speedup = 1 / ratio
        out["speed-up"] = speedup
        out["efficiency"] = speedup / (float(row["value"]) / float(reference["value"]))
    if target is not None:
        out[f"to {percent(target)}"] = _spread(row, f"time_to_{target}")
        to_target = f"time_to_{target}_median"
        out[f"ratio to {percent(target)}"] = row[to_target] / reference[to_target]
    accuracy = row["test_accuracy_median"]
    out["accuracy"] = "-" if pd.isna(accuracy) else f"{accuracy:.2%}"
    out["accuracy change (pt)"] = round(100 * (accuracy - reference["test_accuracy_median"]), 2)
    return out


def _ratio(row: dict, reference: dict, column: str) -> tuple[float, str]:
    """The ratio of medians and its bootstrap interval as "0.61-0.64" ("-" with fewer than two
    repeats on a side)."""
    if row is reference:
        return 1.0, "reference"
    ratio = row[f"{column}_median"] / reference[f"{column}_median"]
    low, high = ratio_interval(row[f"{column}_values"], reference[f"{column}_values"], CONFIDENCE)
    return ratio, "-" if np.isnan(low) else f"{low:.2f}-{high:.2f}"


def _spread(row: dict, column: str) -> str:
    median = row[f"{column}_median"]
    if pd.isna(median):
        return "never" if column.startswith("time_to_") else "-"
    q1, q3 = (row[f"{column}_{name}"] for name in ("q1", "q3"))
    ends = "-".join("never" if pd.isna(value) else f"{value:.2f}" for value in (q1, q3))
    return f"{median:.2f} s [{ends}] (n={int(row['n'])})"


@dataclass
class DimensionSection:
    """What the report shows of one swept dimension."""

    dimension: str
    groups: pd.DataFrame  # held_fixed_groups
    ratios: pd.DataFrame  # ratio_table
    target: str | None  # the accuracy target whose time is shown
    unpaired: int  # settings with no partner that differs in the dimension only

    @property
    def empty(self) -> bool:
        return self.groups.empty


def dimension_section(points: pd.DataFrame, dimension: str) -> DimensionSection:
    groups = held_fixed_groups(points, dimension)
    targets = targets_in(groups) if len(groups) else []
    target = sorting_target(groups, targets) if targets else None
    ratios = ratio_table(groups, dimension, target) if len(groups) else pd.DataFrame()
    return DimensionSection(dimension, groups, ratios, target, len(points) - len(groups))


def without_a_section(runs: pd.DataFrame, sections: list[DimensionSection]) -> str | None:
    """Why swept settings have no section: no run of some of their values ended ok (so the
    finished runs do not vary in them), or the grid fixes every setting; None where all have one."""
    shown = {section.dimension for section in sections}
    ok = setting_texts(finished(runs))
    missing = []
    for dimension in (d for d in swept_dimensions(runs) if d not in shown):
        lost = set(setting_texts(runs, [dimension])[dimension]) - set(ok.get(dimension, ()))
        if lost:
            missing.append((dimension, ", ".join(ordered_values(dimension, lost))))
    if missing:
        names = " and ".join(dimension for dimension, _ in missing)
        values = "; ".join(f"{dimension} {values}" for dimension, values in missing)
        return (
            f"No run of {values} ended ok (see *Runs that did not finish normally*), so the finished "
            f"runs do not vary in {names}: nothing to compare there, and no section for it."
        )
    if not sections:
        return "Every setting of this grid is fixed: there is no swept setting to compare."
    return None


def dimension_sections(runs: pd.DataFrame) -> list[DimensionSection]:
    """A section per swept dimension of the finished runs, in the order of grid.SETTINGS."""
    points = setting_points(runs)
    if points.empty:
        return []
    return [dimension_section(points, dimension) for dimension in swept_dimensions(points)]


# A figure draws at most this many groups (ten colours tell that many lines apart); the table
# has every group. Its height stays far below two screens, whatever the grid.
MOST_GROUPS = 8
PANEL_HEIGHT = 3.6  # inches, at the notebook's 100 dpi
MAX_HEIGHT = 9.0


def shown_groups(section: DimensionSection, most: int = MOST_GROUPS) -> pd.DataFrame:
    """The `most` groups whose fastest setting has the shortest median train phase."""
    fastest = section.groups.groupby("group_id")["time_train_median"].min().sort_values()
    return section.groups[section.groups["group_id"].isin(fastest.index[:most])]


def dimension_figure(section: DimensionSection, most: int = MOST_GROUPS):
    """Train phase, time to the section's target and test accuracy against the dimension's values
    (evenly spaced, in order), one line per group of settings held fixed (at most `most`, the
    fastest), each point the median of one setting's repeats, its bar their quartiles. Returns
    (figure, caption), or (None, why) when no two settings differ in the dimension only."""
    if section.empty:
        return None, _nothing_to_compare(section.dimension)
    shown = shown_groups(section, most)
    panels = [("time_train", "train phase (s)", "log")]
    if section.target is not None:
        panels.append((f"time_to_{section.target}", f"time to {percent(section.target)} (s)", "log"))
    panels.append(("test_accuracy", "test accuracy", "linear"))
    values = ordered_values(section.dimension, shown["value"])
    group_ids = list(dict.fromkeys(shown["group_id"]))
    legend_rows = math.ceil(len(group_ids) / 2)
    height = min(MAX_HEIGHT, PANEL_HEIGHT + 0.3 * legend_rows + 0.4)
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), height), squeeze=False)
    colours = sns.color_palette("colorblind", 10)
    offsets = np.linspace(-0.15, 0.15, len(group_ids)) if len(group_ids) > 1 else [0.0]
    for index, group_id in enumerate(group_ids):
        group = shown[shown["group_id"] == group_id]
        x = group["value"].map(values.index).to_numpy() + offsets[index]
        style = dict(color=colours[index % 10], marker="os^D"[index // 10 % 4], label=group["group"].iloc[0])
        for ax, (column, _, _) in zip(axes[0], panels, strict=True):
            _errorbar(ax, x, group, column, style)
    for ax, (_, ylabel, scale) in zip(axes[0], panels, strict=True):
        ax.set(xticks=range(len(values)), xticklabels=values, xlabel=section.dimension, ylabel=ylabel)
        ax.set_xlim(-0.5, len(values) - 0.5)
        if scale == "log":
            log_axis(ax, "y")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize="small", frameon=False)
    figure.tight_layout(rect=(0, (0.3 * legend_rows + 0.2) / height, 1, 1))
    return figure, _caption(section, len(group_ids))


def _errorbar(ax, x, group: pd.DataFrame, column: str, style: dict) -> None:
    """Medians joined by a line, each with its own repeats' quartiles as a bar; a quartile that
    never reached a target has no bar end."""
    median = group[f"{column}_median"].to_numpy(float)
    below = np.nan_to_num(median - group[f"{column}_q1"].to_numpy(float), nan=0.0)
    above = np.nan_to_num(group[f"{column}_q3"].to_numpy(float) - median, nan=0.0)
    ax.errorbar(x, median, yerr=[below, above], capsize=3, **style)


def _caption(section: DimensionSection, shown: int) -> str:
    total = section.groups["group_id"].nunique()
    which = (
        ("its one group" if total == 1 else f"all {total} groups")
        if shown == total
        else f"{shown} of {total} groups, those with the fastest train phase (the table has all)"
    )
    return (
        f"*{section.dimension} against train phase, time to target and test accuracy, every other "
        f"setting held fixed: one line per group of settings that differ in {section.dimension} only "
        f"(the legend names what the group holds fixed), {which}.* Each point is the median of one "
        "setting's repeats and its bar their interquartile range: the spread of repeats, nothing else."
        + _unpaired_note(section)
    )


def _unpaired_note(section: DimensionSection) -> str:
    if not section.unpaired:
        return ""
    return (
        f" {section.unpaired} other setting{'s' if section.unpaired > 1 else ''} of the grid differ from "
        f"every other in more than {section.dimension}, so they are not in this section."
    )


def _nothing_to_compare(dimension: str) -> str:
    return (
        f"No two settings differ in {dimension} only (it varies together with other settings), so "
        "its effect cannot be read without averaging across them: nothing to show."
    )


def how_to_read(section: DimensionSection) -> str:
    """The one-line reading of the section's ratio table."""
    if section.dimension == "threads":
        extra = (
            " Speed-up is the reference's train phase over this one's; efficiency the speed-up over "
            "the ratio of threads (1 is perfect scaling)."
        )
    elif section.dimension == "precision":
        extra = " The accuracy change says what the faster precision costs."
    else:
        extra = ""
    interval = f"{CONFIDENCE:.0%} bootstrap interval of the ratio over the repeats (- with fewer than 2)"
    return (
        f"*Each row is one setting; rows of a group share every setting but {section.dimension}, "
        f"and the ratios are to the group's first value (vs).* A train ratio below 1 is faster; its "
        f"{interval} excludes 1 where the difference is more than noise.{extra}"
    )
