"""The report's remaining figures: where the time goes, the spread of repeats and of seeds,
learning curves, accuracy against train time with its Pareto front, and a confusion matrix.

Each draws a bounded number of settings, so that no figure grows with the grid: at 1000
settings the tables have every setting, the figures the few that matter (bounded_settings).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistbench.grid import SETTINGS
from mnistbench.report.plots.axes import log_axis
from mnistbench.report.plots.labels import finished, model_label, setting_label, setting_texts
from mnistbench.report.plots.tables import PHASE_COLUMNS
from mnistbench.report.plots.time_to_accuracy import MOST_LINES, first_repeats

sns.set_theme(style="whitegrid", context="notebook")

# A figure of one row per setting shows at most this many, and is at most this tall (inches, at
# the notebook's 100 dpi: 900 px, under one screen).
MOST_ROWS = 20
MAX_HEIGHT = 9.0
ROW_HEIGHT = 0.35
# Every setting but the seed: runs that share these differ only by their seed.
SETTING_COLUMNS = [name for name in SETTINGS if name != "seed"]


def row_height(rows: int) -> float:
    return min(MAX_HEIGHT, max(2.5, ROW_HEIGHT * rows + 1))


def pareto_front(points: pd.DataFrame, time: str = "time_train", accuracy: str = "test_accuracy"):
    """Rows that no other row beats on both accuracy (higher) and time (lower)."""
    ordered = points.dropna(subset=[time, accuracy]).sort_values([time, accuracy], ascending=[True, False])
    front, best = [], -np.inf
    for index, row in ordered.iterrows():
        if row[accuracy] > best:
            front.append(index)
            best = row[accuracy]
    return ordered.loc[front]


def bounded_settings(settings: pd.DataFrame, most: int = MOST_ROWS) -> tuple[pd.DataFrame, str]:
    """At most `most` settings of settings.csv and a phrase saying which: all of them where they
    fit, else the Pareto set of median accuracy against median train phase, then the fastest."""
    if len(settings) <= most:
        return settings, f"all {len(settings)} settings"
    front = pareto_front(settings, "time_train_median", "test_accuracy_median").head(most)
    rest = settings.drop(front.index).sort_values("time_train_median").head(most - len(front))
    which = (
        f"{len(front) + len(rest)} of {len(settings)} settings: the {len(front)} on the Pareto front of "
        f"median accuracy against median train phase, then the fastest (the tables have every setting)"
    )
    return pd.concat([front, rest]), which


def phase_breakdown(shown: pd.DataFrame, grid: pd.DataFrame | None = None):
    """Median seconds of each phase per setting of `shown` (see bounded_settings), stacked; the
    train phase's bar shows its interquartile range over the repeats. Labels as in `grid`."""
    columns = [f"{column}_median" for column in PHASE_COLUMNS]
    data = shown.assign(total=shown[columns].fillna(0).sum(axis=1)).sort_values("total")
    medians = data[columns].fillna(0).set_axis(list(PHASE_COLUMNS.values()), axis=1)
    medians.index = setting_label(data, grid=shown if grid is None else grid)
    figure, axes = plt.subplots(figsize=(10, row_height(len(medians))))
    medians.plot.barh(stacked=True, ax=axes, color=sns.color_palette("colorblind", 4), width=0.8)
    train = medians["train"].to_numpy()
    axes.errorbar(
        (medians["data-load"] + medians["compile"]).to_numpy() + train,
        np.arange(len(medians)),
        xerr=[train - data["time_train_q1"].to_numpy(), data["time_train_q3"].to_numpy() - train],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    axes.set_xlabel("seconds (median of the repeats; bar: train phase q1-q3)")
    axes.set_ylabel("")
    axes.legend(title="phase", loc="lower right")
    figure.tight_layout()
    return figure


def train_time_spread(runs: pd.DataFrame, shown: pd.DataFrame):
    """Every repeat's train phase as a dot, per setting of `shown` (settings.csv rows, see
    bounded_settings) with repeats, their quartiles as a box."""
    data = finished(runs)
    data = data.assign(setting=setting_label(data))
    names = {name for joined in shown["runs"].dropna() for name in joined.split(";")}
    data = data[data["run"].isin(names)]
    counts = data.groupby("setting")["repeat"].count()
    data = data[data["setting"].isin(counts[counts > 1].index)]
    if data.empty:
        return None
    order = data.groupby("setting")["time_train"].median().sort_values().index
    figure, axes = plt.subplots(figsize=(9, row_height(len(order))))
    sns.boxplot(data=data, y="setting", x="time_train", order=order, color="0.9", width=0.5, ax=axes)
    sns.stripplot(
        data=data,
        y="setting",
        x="time_train",
        order=order,
        hue="overlap_seconds",
        palette="flare",
        size=6,
        ax=axes,
        legend=False,
    )
    axes.set(xlabel="train phase (s), each repeat a dot (darker: overlapped another run)", ylabel="")
    log_axis(axes, "x")
    figure.tight_layout()
    return figure


def learning_curves(history: pd.DataFrame, runs: pd.DataFrame, most: int = MOST_LINES):
    """Loss and accuracy per epoch for settings of more than one epoch (each its first finished
    repeat, at most `most`: the most accurate): on the training set solid, on the test set dashed
    (where the history has the per-epoch evaluation)."""
    first = first_repeats(runs)
    first = first[first["epochs"] > 1]
    data = history[history["run"].isin(first["run"])]
    columns = [c for c in ("loss", "accuracy", "test_loss", "test_accuracy") if c in data]
    best = data.groupby("run")["test_accuracy" if "test_accuracy" in columns else "accuracy"].max()
    chosen = best.sort_values(ascending=False).index[:most]
    data = data[data["run"].isin(chosen)].merge(first[["run", "setting"]], on="run")
    long = data.melt(id_vars=["setting", "epoch"], value_vars=columns, var_name="column")
    # Epochs not evaluated have no test numbers: the dashed line joins those that were.
    long = long.dropna(subset=["value"])
    if long.empty:
        return None
    test = long["column"].str.startswith("test_")
    long = long.assign(
        metric=long["column"].str.removeprefix("test_"), data=np.where(test, "test", "training")
    )
    splits = ["training", "test"] if test.any() else ["training"]
    grid = sns.relplot(
        data=long,
        x="epoch",
        y="value",
        hue="setting",
        style="data",
        style_order=splits,
        dashes={"training": "", "test": (4, 2)},
        col="metric",
        col_order=["loss", "accuracy"],
        kind="line",
        marker="o",
        facet_kws={"sharey": False},
        height=3.5,
        aspect=1.3,
    )
    grid.set_titles("{col_name}")
    return grid.figure


def accuracy_vs_train_time(runs: pd.DataFrame):
    """Every finished run's accuracy against its train phase, and the runs on the Pareto front
    (labelled by their setting)."""
    data = finished(runs).assign(network=lambda d: model_label(d))
    figure, axes = plt.subplots(figsize=(8, 4.5))
    sns.scatterplot(
        data=data, x="time_train", y="test_accuracy", hue="network", style="optimizer", s=70, ax=axes
    )
    front = pareto_front(data)
    axes.plot(front["time_train"], front["test_accuracy"], "k--", lw=1, label="Pareto front")
    axes.set(xlabel="train phase (s)", ylabel="test accuracy")
    log_axis(axes, "x")
    axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    return figure, front.assign(setting=setting_label(front, grid=data))


def confusion_heatmap(confusion: pd.DataFrame, title: str):
    counts = confusion.drop(columns="true").to_numpy()
    figure, axes = plt.subplots(figsize=(6, 5))
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes, annot_kws={"size": 8})
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    figure.tight_layout()
    return figure


def _first_repeats_with_seeds(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """First finished repeats (a repeat has its seed's numbers again) with a key column of the
    settings but the seed, kept where that key ran with more than one seed."""
    data = finished(runs)
    data = data[data["repeat"] == 1]
    keys = [c for c in SETTING_COLUMNS if c in data.columns]
    data = data.assign(_key=setting_texts(data, keys).apply(tuple, axis=1))
    seeds = data.groupby("_key")["seed"].transform("nunique")
    return data[seeds > 1], keys


def seed_spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% interval of accuracy per setting that ran with more than one seed, most
    accurate first."""
    data, keys = _first_repeats_with_seeds(runs)
    rows = []
    for _, group in data.groupby("_key", sort=False):
        accuracy = group["test_accuracy"]
        half = 1.96 * accuracy.std(ddof=1) / np.sqrt(len(accuracy))
        rows.append(
            {
                "setting": setting_label(group, without=("seed",), grid=data).iloc[0],
                "seeds": len(group),
                "mean_accuracy": accuracy.mean(),
                "ci95_low": accuracy.mean() - half,
                "ci95_high": accuracy.mean() + half,
                "mean_train_seconds": group["time_train"].mean(),
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values("mean_accuracy", ascending=False).reset_index(drop=True) if rows else table


def seed_spread_plot(runs: pd.DataFrame, most: int = MOST_ROWS):
    """Each seed's accuracy as a dot per setting (the `most` most accurate), the mean with its
    95% interval."""
    data, _ = _first_repeats_with_seeds(runs)
    data = data.assign(setting=setting_label(data, without=("seed",)))
    order = data.groupby("setting")["test_accuracy"].mean().sort_values(ascending=False).index[:most]
    data = data[data["setting"].isin(order)]
    figure, axes = plt.subplots(figsize=(8, row_height(len(order))))
    sns.pointplot(
        data=data, y="setting", x="test_accuracy", order=order, errorbar=("ci", 95), linestyle="none", ax=axes
    )
    sns.stripplot(data=data, y="setting", x="test_accuracy", order=order, color="0.4", size=4, ax=axes)
    axes.set(xlabel="test accuracy (mean, 95% interval, each seed a dot)", ylabel="")
    figure.tight_layout()
    return figure
