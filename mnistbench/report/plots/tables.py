"""The report's tables: the seed documents beside our numbers, every run, one row per setting.
(Time to each target is time_to_accuracy.time_to_target_table; ratios per dimension are in
dimensions.ratio_table.)"""

from __future__ import annotations

import pandas as pd

from mnistbench.report.plots.labels import setting_label, spread
from mnistbench.results.efficiency import MACHINE_GPU_COLUMNS
from mnistbench.stopwatch import PHASES, phase_column

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


RUN_TABLE_COLUMNS = [
    "setting",
    "repeat",
    "status",
    "test_accuracy",
    "test_loss",
    *PHASE_COLUMNS,
    "time_startup",
    "overlap_seconds",
    "peak_rss_mb",
    "run",
]


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs, best first; failed and diverged runs stay in, at the bottom. Each run is named by
    the settings that vary (setting_label), its folder name last."""
    order = runs.assign(_ok=runs["status"].eq("ok"), setting=setting_label(runs)).sort_values(
        ["_ok", "test_accuracy", "run"], ascending=[False, False, True], na_position="last"
    )
    return order[[c for c in RUN_TABLE_COLUMNS if c in order.columns]].reset_index(drop=True)


SETTINGS_TABLE_COLUMNS = [
    "setting",
    "n",
    "train",
    "steady_epoch",
    "test_accuracy_median",
    "identical_results",
    "noisy",
    "overlapped",
]


def settings_table(settings: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: train phase and steady epoch as median [q1-q3] (n), the median accuracy,
    and whether the repeats agreed and can be trusted."""
    if settings.empty:
        return pd.DataFrame(columns=SETTINGS_TABLE_COLUMNS)
    per_setting = settings.assign(
        setting=setting_label(settings),
        train=settings.apply(spread, axis=1, column="time_train"),
        steady_epoch=settings.apply(spread, axis=1, column="time_epoch_steady"),
    )
    return per_setting[SETTINGS_TABLE_COLUMNS].reset_index(drop=True)


def machine_table(machine: pd.DataFrame) -> pd.DataFrame:
    """machine.csv turned on its side: a row per attribute, a column per host. The GPU's rows
    (name, memory, driver, CUDA, cuDNN) are there when some host ran a GPU run."""
    gpu = [column for column in MACHINE_GPU_COLUMNS.values() if column in machine]
    if gpu and machine[gpu].isna().all().all():
        machine = machine.drop(columns=gpu)
    hosts = [f"host {i + 1}" for i in range(len(machine))]
    return machine.T.reset_index().set_axis(["attribute", *hosts], axis=1)
