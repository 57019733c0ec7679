"""Time to accuracy in the report: per model the fastest setting to the highest target reached,
a table of every setting's time to each target, and DAWNBench's accuracy-against-time plot.

Times come from the summary tables (see summary.times_to_targets): the train clock keeps the
per-epoch evaluations off the clock (MLCommons AlgoPerf), the wall clock keeps them on (MLPerf
Training). A target never reached has no time, never 0.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistbench.grid import SETTINGS
from mnistbench.report.plots.axes import log_axis
from mnistbench.report.plots.labels import finished, is_number, model_label, setting_label

# Enough lines to compare, few enough to tell apart (ten colours, then a second marker).
MOST_LINES = 12


def targets_in(table: pd.DataFrame, suffix: str = "_median") -> list[str]:
    """The target labels ("0.97") of settings.csv's time_to_<t>_median columns (or, with
    suffix "", of runs.csv's time_to_<t>), lowest first."""
    labels = [
        column.removeprefix("time_to_").removesuffix(suffix)
        for column in table.columns
        if column.startswith("time_to_") and column.endswith(suffix)
    ]
    return sorted((label for label in labels if is_number(label)), key=float)


def percent(target: str) -> str:
    """ "0.97" -> "97%", "0.995" -> "99.5%"."""
    return f"{float(target) * 100:g}%"


def model_groups(settings: pd.DataFrame) -> pd.Series:
    """The model of each setting (model_label), with its dataset where several ran: a
    target means something else on another dataset."""
    models = pd.Series(model_label(settings), index=settings.index)
    if "dataset" in settings and settings["dataset"].nunique() > 1:
        models = models + " on " + settings["dataset"].astype(str)
    return models


def train_clock_spread(row: pd.Series, target: str) -> str:
    """ "12.31 s [12.10-12.50]": the median and quartiles of the train clock to `target`; a
    quartile among the repeats that never reached it is "never" (it is infinitely slow)."""
    median, q1, q3 = (row[f"time_to_{target}_{name}"] for name in ("median", "q1", "q3"))
    return f"{median:.2f} s [{_seconds(q1)}-{_seconds(q3)}]"


def _seconds(value) -> str:
    return "never" if pd.isna(value) else f"{value:.2f}"


def reached(row: pd.Series, target: str) -> str:
    """ "1/3": how many of the setting's repeats reached `target`, of those that finished or
    diverged (n_to_targets; n in tables that predate it)."""
    count, total = row.get(f"reached_{target}"), row.get("n_to_targets")
    return f"{0 if pd.isna(count) else int(count)}/{int(row['n'] if pd.isna(total) else total)}"


def fastest_to_target_lines(settings: pd.DataFrame) -> list[str]:
    """Key-result lines, one per model: the highest target that a setting of it reached (a median
    exists: most repeats got there) and its setting with the fastest median train clock to it;
    or, where none did, its best median accuracy. Models reaching higher targets come first."""
    targets = targets_in(settings)
    if not targets:
        return [
            "**Time to accuracy**: no accuracy targets in these results (none configured, or "
            "they predate the per-epoch evaluation)."
        ]
    labelled = settings.assign(setting=setting_label(settings), model_group=model_groups(settings))
    found, missed = [], []
    for model, group in labelled.groupby("model_group", sort=True):
        highest = next((t for t in reversed(targets) if group[f"time_to_{t}_median"].notna().any()), None)
        if highest is None:
            missed.append(_no_target_line(model, group, targets[0]))
            continue
        fastest = group.sort_values(f"time_to_{highest}_median").iloc[0]
        line = _fastest_line(model, fastest, highest)
        found.append((-float(highest), fastest[f"time_to_{highest}_median"], line))
    return [line for *_, line in sorted(found)] + missed


def _fastest_line(model: str, row: pd.Series, target: str) -> str:
    count = reached(row, target).replace("/", " of ")
    epochs = row.get(f"epochs_to_{target}_median")
    epoch = "" if pd.isna(epochs) else f", epoch {epochs:g}"
    return (
        f"**Fastest to {percent(target)}** ({model}): {row['setting']}, "
        f"{train_clock_spread(row, target)} train phase (n={int(row['n'])}, {count} reached), "
        f"{row[f'wall_to_{target}_median']:.2f} s with evaluation on the clock{epoch}."
    )


def _no_target_line(model: str, group: pd.DataFrame, lowest: str) -> str:
    best = group["test_accuracy_median"].max()
    counts = group.get(f"reached_{lowest}", pd.Series(0, index=group.index)).fillna(0)
    if counts.max() > 0:  # some repeats got there, but in no setting most of them
        closest = group.loc[counts.idxmax()]
        return (
            f"**No target reached** ({model}): no setting got most of its repeats to {percent(lowest)} "
            f"(at best {reached(closest, lowest).replace('/', ' of ')} repeats, {closest['setting']}); "
            f"best median test accuracy {best:.2%}."
        )
    if best >= float(lowest):  # its final evaluations reached it: its epochs were not evaluated
        return (
            f"**No time to accuracy** ({model}): its best median test accuracy is {best:.2%}, but its "
            "runs have no per-epoch test accuracy (they predate the per-epoch evaluation)."
        )
    accuracy = "no test accuracy" if pd.isna(best) else f"best median test accuracy {best:.2%}"
    return (
        f"**No target reached** ({model}): no setting got most of its repeats to {percent(lowest)}; "
        f"{accuracy}."
    )


def sorting_target(settings: pd.DataFrame, targets: list[str]) -> str | None:
    """The highest target that most settings reached (a median exists); failing that, the one
    the most settings reached; None where no setting reached any."""
    counts = {target: int(settings[f"time_to_{target}_median"].notna().sum()) for target in targets}
    majority = [target for target in targets if counts[target] > len(settings) / 2]
    if majority:
        return majority[-1]
    best = max(targets, key=lambda target: (counts[target], float(target)), default=None)
    return best if best is not None and counts[best] else None


def time_to_target_table(settings: pd.DataFrame) -> pd.DataFrame:
    """One row per setting; per target "12.31 s [12.10-12.50] (3/3), wall 14.02 s, epoch 2": the
    train clock's median [q1-q3], how many repeats reached it, the wall clock's median and the
    median epoch; "- (1/3)" where most repeats did not reach it. Fastest to the highest target
    most settings reached first. Empty when the results have no targets."""
    targets = targets_in(settings)
    if settings.empty or not targets:
        return pd.DataFrame()
    table = pd.DataFrame({"setting": setting_label(settings), "n": settings["n"].astype(int)})
    for target in targets:
        table[f"to {percent(target)}"] = [_target_cell(row, target) for _, row in settings.iterrows()]
    table["final accuracy"] = settings["test_accuracy_median"].map(
        lambda accuracy: "-" if pd.isna(accuracy) else f"{accuracy:.2%}"
    )
    key = sorting_target(settings, targets)
    order = pd.DataFrame(
        {
            "seconds": settings[f"time_to_{key}_median"] if key else np.nan,
            "accuracy": settings["test_accuracy_median"],
        }
    ).sort_values(["seconds", "accuracy"], ascending=[True, False], na_position="last")
    return table.loc[order.index].reset_index(drop=True)


def _target_cell(row: pd.Series, target: str) -> str:
    if pd.isna(row[f"time_to_{target}_median"]):
        return f"- ({reached(row, target)})"
    epochs = row.get(f"epochs_to_{target}_median")
    epoch = "" if pd.isna(epochs) else f", epoch {epochs:g}"
    wall = row[f"wall_to_{target}_median"]
    return f"{train_clock_spread(row, target)} ({reached(row, target)}), wall {wall:.2f} s{epoch}"


def first_repeats(runs: pd.DataFrame) -> pd.DataFrame:
    """Each setting's first finished repeat, labelled by its setting (by its run's name where
    two settings share a label, e.g. differing only in learning rate or seed)."""
    keys = [name for name in SETTINGS if name in runs]
    done = finished(runs).sort_values("repeat")
    first = done[~done.duplicated(keys)]  # duplicated() counts NaN equal to NaN
    labels = setting_label(first)
    return first.assign(setting=labels.where(~labels.duplicated(keep=False), first["run"]))


def fastest_to_highest(first: pd.DataFrame, curves: pd.DataFrame, most: int = MOST_LINES) -> pd.DataFrame:
    """The `most` runs of `first` that reached the highest target fastest (runs.csv's time_to_<t>);
    without targets, the most accurate ones first."""
    best = curves.groupby("run")["test_accuracy"].max().rename("best_accuracy")
    ranked = first.join(best, on="run").dropna(subset=["best_accuracy"])
    highest = pd.Series(-np.inf, index=ranked.index)
    seconds = pd.Series(np.inf, index=ranked.index)
    for target in targets_in(ranked, suffix=""):  # lowest first: a higher target overrides
        hit = ranked[f"time_to_{target}"].notna()
        highest[hit], seconds[hit] = float(target), ranked.loc[hit, f"time_to_{target}"]
    ranked = ranked.assign(_highest=highest, _seconds=seconds)
    ranked = ranked.sort_values(["_highest", "_seconds", "best_accuracy"], ascending=[False, True, False])
    return ranked.head(most)


def accuracy_vs_time(history: pd.DataFrame, runs: pd.DataFrame, most: int = MOST_LINES):
    """DAWNBench's plot: test accuracy after each evaluated epoch against the train clock (log
    axis), one line per setting (its first finished repeat), at most `most` settings (those
    reaching the highest target fastest), the targets dashed. None without per-epoch test accuracy."""
    if "test_accuracy" not in history or "train_clock" not in history:
        return None
    curves = history.dropna(subset=["test_accuracy", "train_clock"])
    shown = fastest_to_highest(first_repeats(runs), curves, most)
    if shown.empty:
        return None
    figure, axes = plt.subplots(figsize=(9, 5))
    colours = sns.color_palette("colorblind", 10)
    for index, (_, run) in enumerate(shown.iterrows()):
        curve = curves[curves["run"] == run["run"]].sort_values("epoch")
        axes.plot(
            curve["train_clock"],
            curve["test_accuracy"],
            marker="os"[index // 10 % 2],
            color=colours[index % 10],
            label=run["setting"],
        )
    for target in targets_in(runs, suffix=""):
        axes.axhline(float(target), color="0.4", linestyle="--", linewidth=0.8)
        axes.annotate(
            percent(target), (1, float(target)), xycoords=("axes fraction", "data"), fontsize="x-small"
        )
    axes.set(xlabel="train clock (s, evaluations off the clock)", ylabel="test accuracy")
    log_axis(axes, "x")
    axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.06, 1))
    figure.tight_layout()
    return figure
