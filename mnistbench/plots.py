"""Tables and seaborn figures of the report; the notebook only arranges them with captions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistbench.grid import ADDED_SETTINGS, SETTINGS, added_tags
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


def spread(row, column: str, unit: str = " s", digits: int = 2) -> str:
    """A timed column of settings.csv as "median [q1-q3] (n=...)"."""
    median = row[f"{column}_median"]
    if pd.isna(median):
        return "-"
    q1, q3 = row[f"{column}_q1"], row[f"{column}_q3"]
    return f"{median:.{digits}f}{unit} [{q1:.{digits}f}-{q3:.{digits}f}] (n={row['n']})"


def in_experiment(table: pd.DataFrame, experiment: str) -> pd.Series:
    return table["experiments"].fillna("").str.split(";").apply(lambda names: experiment in names)


def claimed_setting(settings: pd.DataFrame, claim: dict):
    """Our most accurate setting of a seed document's experiment, or None if it did not run."""
    ours = settings[in_experiment(settings, claim["experiment"])]
    return ours.sort_values("test_accuracy_median", ascending=False).iloc[0] if len(ours) else None


def seed_comparison(settings: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for claim in SEED_CLAIMS:
        best = claimed_setting(settings, claim)
        row = dict(claim)
        if best is not None:
            row.update(
                our_accuracy=f"{best['test_accuracy_median']:.1%}", our_train=spread(best, "time_train")
            )
        else:
            row.update(our_accuracy="(not in this config)", our_train="-")
        rows.append(row)
    return pd.DataFrame(rows).drop(columns="experiment")


def hardware_label(table: pd.DataFrame, without: tuple[str, ...] = ()) -> pd.Series:
    """ " t2 bf16 xla": the hardware settings away from their defaults, with the tags of run
    names (grid.added_tags), so that two such settings are never shown as one."""
    kept = table[[c for c in ADDED_SETTINGS if c in table and c not in without]]
    tags = [" ".join(added_tags(row)) for row in kept.to_dict("records")]
    return pd.Series([f" {t}" if t else "" for t in tags], index=table.index, dtype=object)


def setting_label(table: pd.DataFrame, without: tuple[str, ...] = ()) -> pd.Series:
    """A short name of each row's setting: network, optimizer, batch, epochs, backend, and the
    hardware settings away from their defaults; `without` leaves columns out."""
    label = (
        model_label(table)
        + " "
        + table["optimizer"].astype(str)
        + " b"
        + table["batch_size"].astype(str)
        + " e"
        + table["epochs"].astype(str)
    )
    label = pd.Series(label, index=table.index)
    if "backend" not in without:
        label = label + " " + table["backend"].astype(str)
    return label + hardware_label(table, without)


def key_results(settings: pd.DataFrame) -> list[str]:
    """The report's opening lines: seed reproductions, per model the fastest setting to the highest
    accuracy target reached, the most accurate setting, the backend comparison, and the settings
    whose times are not to be trusted."""
    from mnistbench.time_to_accuracy import fastest_to_target_lines  # it builds on this module

    if settings.empty:
        return ["No run finished, so there are no results yet."]
    lines = []
    for claim in SEED_CLAIMS:
        row = claimed_setting(settings, claim)
        if row is not None:
            lines.append(
                f"**{claim['document']}** ({claim['setting']}): {row['test_accuracy_median']:.1%} "
                f"test accuracy (reported {claim['reported_accuracy']}), "
                f"train phase {spread(row, 'time_train')}."
            )
    lines += fastest_to_target_lines(settings)
    labelled = settings.assign(setting=setting_label(settings))
    best = labelled.sort_values("test_accuracy_median", ascending=False).iloc[0]
    lines.append(
        f"**Most accurate**: {best['setting']}, {best['test_accuracy_median']:.2%}, "
        f"train phase {spread(best, 'time_train')}."
    )
    backends = backend_comparison(settings)
    for _, row in backends.iterrows():
        times = [
            f"{column.removeprefix('train (backend ').rstrip(')')} {row[column]}"
            for column in backends.columns
            if column.startswith("train (")
        ]
        ratios = [
            f"{column[6:]} {row[column]:.2f}" for column in backends.columns if column.startswith("ratio ")
        ]
        lines.append(
            f"**Backends**, {row['setting']}: train phase {'; '.join(times)}; "
            f"ratio of medians {', '.join(ratios)}."
        )
    flagged = labelled[labelled["noisy"] | labelled["overlapped"]]
    for _, row in flagged.iterrows():
        why = " and ".join(
            reason
            for reason, flag in (("noisy", row["noisy"]), ("measured with overlap", row["overlapped"]))
            if flag
        )
        lines.append(
            f"**Not to be trusted** ({why}): {row['setting']}, train phase {spread(row, 'time_train')}."
        )
    varied = labelled[~labelled["identical_results"]]
    for _, row in varied.iterrows():
        lines.append(
            f"**Repeats differ** in accuracy or loss: {row['setting']} "
            "(its backend is not deterministic here)."
        )
    return lines


RUN_TABLE_COLUMNS = [
    "run",
    "repeat",
    "status",
    "test_accuracy",
    "test_loss",
    *PHASE_COLUMNS,
    "time_startup",
    "overlap_seconds",
    "peak_rss_mb",
]


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs, best first; failed and diverged runs stay in, at the bottom. The settings are
    in each run's name, so the table fits a screen without scrolling sideways."""
    order = runs.assign(_ok=runs["status"].eq("ok")).sort_values(
        ["_ok", "test_accuracy", "run"], ascending=[False, False, True], na_position="last"
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
        estimator="median",
        errorbar=("pi", 50),  # the interquartile range of the repeats
        err_style="bars",
    )
    grid.set(xscale="log", yscale=yscale, xlabel="batch size", ylabel=ylabel)
    grid.legend.set_title("")
    return grid.figure


def accuracy_vs_batch_size(runs: pd.DataFrame):
    return _against_batch_size(runs, "test_accuracy", "test accuracy")


def train_time_vs_batch_size(runs: pd.DataFrame):
    return _against_batch_size(runs, "time_train", "train phase (s)", yscale="log")


def phase_breakdown(settings: pd.DataFrame):
    """Median seconds of each phase per setting, stacked; the train phase's bar shows its
    interquartile range over the repeats."""
    columns = [f"{column}_median" for column in PHASE_COLUMNS]
    data = settings.assign(total=settings[columns].fillna(0).sum(axis=1)).sort_values("total")
    medians = data[columns].fillna(0).set_axis(list(PHASE_COLUMNS.values()), axis=1)
    labels = setting_label(data) + np.where(
        data["seed"].astype(str) != "0", " s" + data["seed"].astype(str), ""
    )
    medians.index = labels
    height = max(2.5, 0.35 * len(medians) + 1)
    figure, axes = plt.subplots(figsize=(10, height))
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


def learning_curves(history: pd.DataFrame, runs: pd.DataFrame):
    """Loss and accuracy per epoch for runs of more than one epoch: on the training set solid,
    on the test set dashed (where the history has the per-epoch evaluation)."""
    data = history.merge(runs[["run", "status"]], on="run")
    data = data[data["run"].isin(runs.loc[runs["epochs"] > 1, "run"])]
    columns = [c for c in ("loss", "accuracy", "test_loss", "test_accuracy") if c in data]
    long = data.melt(id_vars=["run", "epoch"], value_vars=columns, var_name="column")
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
        hue="run",
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


BACKEND_ORDER = {"tensorflow": 0, "jax": 1, "torch": 2}
# Every setting but the seed: runs that share these differ only by their seed.
SETTING_COLUMNS = [name for name in SETTINGS if name != "seed"]


def seed_spread(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% interval of accuracy per setting that ran with more than one seed (first
    repeats only: a repeat has its seed's numbers again)."""
    data = finished(runs)
    data = data[data["repeat"] == 1]
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
    data = finished(runs)
    data = data[data["repeat"] == 1].assign(network=lambda d: model_label(d))
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


def backend_comparison(settings: pd.DataFrame) -> pd.DataFrame:
    """Settings that ran on more than one Keras backend (see dimension_comparison)."""
    return dimension_comparison(settings, "backend")


HARDWARE_DIMENSIONS = ("threads", "device", "precision", "jit_compile")
DIMENSION_ORDER = {
    "backend": BACKEND_ORDER,
    "device": {"cpu": 0, "gpu": 1},
    "precision": {"float32": 0, "mixed_bfloat16": 1, "mixed_float16": 2},
    "jit_compile": {"auto": 0, "False": 1, "True": 2},
}


def _order(dimension: str):
    ranks = DIMENSION_ORDER.get(dimension)
    if ranks is None:  # numbers: ascending
        return lambda values: pd.to_numeric(values, errors="coerce")
    return lambda values: values.astype(str).map(ranks)


def dimension_comparison(settings: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Settings that differ only in `dimension`: per value the train phase as median [q1-q3] (n)
    and the accuracy, and each value's ratio of train-phase medians to the first (reference)
    value; for threads also the speed-up and the parallel efficiency (speed-up / threads
    ratio). Every other setting is held fixed: one row per combination of them."""
    if settings.empty or dimension not in settings:
        return pd.DataFrame()
    keys = [c for c in SETTINGS if c != dimension]
    # Labels first: the "-" that stands for "does not apply" below is no number to format.
    data = settings.assign(label=setting_label(settings, without=(dimension,))).fillna({k: "-" for k in keys})
    rows = []
    for _, group in data.groupby(keys, sort=False):
        if group[dimension].astype(str).nunique() < 2:
            continue
        group = group.sort_values(dimension, key=_order(dimension))
        first = group.iloc[0]
        row = {"setting": group["label"].iloc[0]}
        for _, value in group.iterrows():
            name = value[dimension]
            row[f"train ({dimension} {name})"] = spread(value, "time_train")
            row[f"startup ({dimension} {name})"] = spread(value, "time_startup")
            row[f"accuracy ({dimension} {name})"] = f"{value['test_accuracy_median']:.2%}"
        for _, value in group.iloc[1:].iterrows():
            ratio = value["time_train_median"] / first["time_train_median"]
            row[f"ratio {value[dimension]} / {first[dimension]}"] = ratio
            if dimension == "threads":
                speedup = 1 / ratio
                row[f"speed-up {value[dimension]} / {first[dimension]}"] = speedup
                row[f"efficiency {value[dimension]}"] = speedup / (
                    float(value[dimension]) / float(first[dimension])
                )
            else:
                accuracy = value["test_accuracy_median"] - first["test_accuracy_median"]
                row[f"accuracy change {value[dimension]} (pt)"] = round(100 * accuracy, 2)
        rows.append(row)
    return pd.DataFrame(rows)


def train_time_spread(runs: pd.DataFrame):
    """Every repeat's train phase as a dot, per setting with repeats, the median as a bar."""
    data = finished(runs)
    data = data.assign(setting=setting_label(data))
    counts = data.groupby("setting")["repeat"].count()
    data = data[data["setting"].isin(counts[counts > 1].index)]
    if data.empty:
        return None
    order = data.groupby("setting")["time_train"].median().sort_values().index
    figure, axes = plt.subplots(figsize=(9, max(2.5, 0.45 * len(order) + 1)))
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
    axes.set(
        xscale="log", xlabel="train phase (s), each repeat a dot (darker: overlapped another run)", ylabel=""
    )
    figure.tight_layout()
    return figure
