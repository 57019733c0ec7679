"""Tables and seaborn figures of the report; the notebook only arranges them with captions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistbench.grid import SETTINGS
from mnistbench.stopwatch import PHASES, phase_column

sns.set_theme(style="whitegrid", context="notebook")

# The phases a run's job spends in the lesson's steps (start-up is the interpreter and imports).
PHASE_COLUMNS = {phase_column(phase): phase for phase in PHASES if phase != "startup"}

# What the two seed documents reported, to set beside this machine's numbers.
SEED_CLAIMS = [
    {
        "document": "course lesson",
        "experiment": "lesson",
        "setting": "784-64-10 mlp, adam, batch 4, 1 epoch",
        "reported_accuracy": "91.0%",
        "reported_train_seconds": 20.58,
        "reported_on": "Colab, TensorFlow 1.14, 2 CPUs",
    },
    {
        "document": "blog post",
        "experiment": "blog",
        "setting": "softmax regression, sgd, batch 32, 20 epochs",
        "reported_accuracy": "92-93%",
        "reported_train_seconds": None,
        "reported_on": "not stated",
    },
]


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def model_label(runs: pd.DataFrame) -> pd.Series:
    hidden = runs["hidden_units"].astype("Int64").astype(str)
    return np.where(
        runs["model"] == "mlp", "mlp" + hidden + "-" + runs["activation"].astype(str), runs["model"]
    )


def seed_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for claim in SEED_CLAIMS:
        ours = runs[
            runs["experiments"]
            .fillna("")
            .str.split(";")
            .apply(lambda names, c=claim: c["experiment"] in names)
        ]
        row = dict(claim)
        if len(ours):
            best = ours.iloc[0]
            row.update(
                our_run=best["run"],
                our_status=best["status"],
                our_accuracy=f"{best['test_accuracy']:.1%}" if pd.notna(best["test_accuracy"]) else "-",
                our_train_seconds=round(best["time_train"], 2) if pd.notna(best["time_train"]) else None,
            )
        else:
            row.update(
                our_run="(not in this config)", our_status="-", our_accuracy="-", our_train_seconds=None
            )
        rows.append(row)
    return pd.DataFrame(rows).drop(columns="experiment")


RUN_TABLE_COLUMNS = [
    "run",
    "experiments",
    "status",
    "test_accuracy",
    "test_loss",
    *[name for name in SETTINGS if name != "dataset"],
    *PHASE_COLUMNS,
    "time_startup",
    "train_samples_per_second",
    "peak_memory_mb",
    "device",
]


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs, best first; failed and diverged runs stay in, at the bottom."""
    order = runs.assign(_ok=runs["status"].eq("ok")).sort_values(
        ["_ok", "test_accuracy"], ascending=[False, False], na_position="last"
    )
    return order[[c for c in RUN_TABLE_COLUMNS if c in order.columns]].reset_index(drop=True)


def _against_batch_size(runs: pd.DataFrame, y: str, ylabel: str, yscale: str = "linear"):
    """One line per network and optimizer, batch size on a log axis."""
    data = finished(runs).assign(network=lambda d: model_label(d))
    grid = sns.relplot(
        data=data,
        x="batch_size",
        y=y,
        hue="network",
        style="optimizer",
        kind="line",
        markers=True,
        dashes=False,
        height=4,
        aspect=1.5,
        errorbar=None,
    )
    grid.set(xscale="log", yscale=yscale, xlabel="batch size", ylabel=ylabel)
    grid.legend.set_title("")
    return grid.figure


def accuracy_vs_batch_size(runs: pd.DataFrame):
    return _against_batch_size(runs, "test_accuracy", "test accuracy")


def train_time_vs_batch_size(runs: pd.DataFrame):
    return _against_batch_size(runs, "time_train", "train phase (s)", yscale="log")


def phase_breakdown(runs: pd.DataFrame):
    data = runs.set_index("run")[list(PHASE_COLUMNS)].rename(columns=PHASE_COLUMNS).fillna(0)
    data = data.loc[data.sum(axis=1).sort_values().index]
    height = max(2.5, 0.35 * len(data) + 1)
    figure, axes = plt.subplots(figsize=(10, height))
    data.plot.barh(stacked=True, ax=axes, color=sns.color_palette("colorblind", 4), width=0.8)
    axes.set_xlabel("seconds")
    axes.set_ylabel("")
    axes.legend(title="phase", loc="lower right")
    figure.tight_layout()
    return figure


def learning_curves(history: pd.DataFrame, runs: pd.DataFrame):
    data = history.merge(runs[["run", "status"]], on="run")
    data = data[data["run"].isin(runs.loc[runs["epochs"] > 1, "run"])]
    if data.empty:
        return None
    long = data.melt(id_vars=["run", "epoch"], value_vars=["loss", "accuracy"], var_name="metric")
    grid = sns.relplot(
        data=long,
        x="epoch",
        y="value",
        hue="run",
        col="metric",
        kind="line",
        marker="o",
        facet_kws={"sharey": False},
        height=3.5,
        aspect=1.3,
    )
    grid.set_titles("training {col_name}")
    return grid.figure


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Runs that no other run beats on both accuracy (higher) and train time (lower)."""
    ordered = points.sort_values(["time_train", "test_accuracy"], ascending=[True, False])
    front, best = [], -np.inf
    for index, row in ordered.iterrows():
        if row["test_accuracy"] > best:
            front.append(index)
            best = row["test_accuracy"]
    return ordered.loc[front]


def accuracy_vs_train_time(runs: pd.DataFrame):
    data = finished(runs).assign(network=lambda d: model_label(d))
    figure, axes = plt.subplots(figsize=(8, 4.5))
    sns.scatterplot(
        data=data, x="time_train", y="test_accuracy", hue="network", style="optimizer", s=70, ax=axes
    )
    front = pareto_front(data)
    axes.plot(front["time_train"], front["test_accuracy"], "k--", lw=1, label="Pareto front")
    axes.set(xscale="log", xlabel="train phase (s)", ylabel="test accuracy")
    axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    return figure, front


def confusion_heatmap(confusion: pd.DataFrame, title: str):
    counts = confusion.drop(columns="true").to_numpy()
    figure, axes = plt.subplots(figsize=(6, 5))
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes, annot_kws={"size": 8})
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    figure.tight_layout()
    return figure


# Every setting but the seed: runs that share these differ only by their seed.
SETTING_COLUMNS = [name for name in SETTINGS if name != "seed"]


def seed_spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% interval of accuracy per setting that ran with more than one seed."""
    data = finished(runs)
    keys = [c for c in SETTING_COLUMNS if c in data.columns]
    grouped = data.fillna({k: "-" for k in keys}).groupby(keys)
    rows = []
    for setting, group in grouped:
        if group["seed"].nunique() < 2:
            continue
        accuracy = group["test_accuracy"]
        half = 1.96 * accuracy.std(ddof=1) / np.sqrt(len(accuracy))
        rows.append(
            {
                **dict(zip(keys, setting, strict=True)),
                "seeds": len(group),
                "mean_accuracy": accuracy.mean(),
                "ci95_low": accuracy.mean() - half,
                "ci95_high": accuracy.mean() + half,
                "mean_train_seconds": group["time_train"].mean(),
            }
        )
    return pd.DataFrame(rows)


def seed_spread_plot(runs: pd.DataFrame):
    data = finished(runs).assign(network=lambda d: model_label(d))
    keys = [c for c in SETTING_COLUMNS if c in data.columns]
    data = data.assign(setting=data[keys].apply(lambda row: " ".join(map(str, row)), axis=1))
    counts = data.groupby("setting")["seed"].nunique()
    data = data[data["setting"].isin(counts[counts > 1].index)]
    data = data.assign(
        setting=data["network"] + " " + data["optimizer"] + " b" + data["batch_size"].astype(str)
    )
    figure, axes = plt.subplots(figsize=(8, max(2.5, 0.5 * data["setting"].nunique() + 1)))
    sns.pointplot(data=data, y="setting", x="test_accuracy", errorbar=("ci", 95), linestyle="none", ax=axes)
    sns.stripplot(data=data, y="setting", x="test_accuracy", color="0.4", size=4, ax=axes)
    axes.set(xlabel="test accuracy (mean, 95% interval, each seed a dot)", ylabel="")
    figure.tight_layout()
    return figure


def backend_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Settings that ran on more than one Keras backend: phase times and accuracy side by side."""
    data = finished(runs)
    keys = [c for c in SETTING_COLUMNS if c in data.columns and c != "backend"] + ["seed"]
    data = data.assign(network=model_label(data)).fillna({k: "-" for k in keys})
    counts = data.groupby(keys)["backend"].nunique()
    shared = counts[counts > 1].index
    if shared.empty:
        return pd.DataFrame()
    data = data.set_index(keys).loc[shared].reset_index()
    table = data.pivot_table(
        index=["network", "optimizer", "batch_size", "epochs", "seed"],
        columns="backend",
        values=["time_train", "time_startup", "test_accuracy"],
    )
    table.columns = [f"{value} ({backend})" for value, backend in table.columns]
    if {"time_train (jax)", "time_train (tensorflow)"} <= set(table.columns):
        table["train time jax / tensorflow"] = table["time_train (jax)"] / table["time_train (tensorflow)"]
    return table.reset_index()
