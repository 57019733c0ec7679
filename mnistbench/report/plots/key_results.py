"""The report's opening lines: the seed documents reproduced, the fastest setting to each model's
highest target, the most accurate setting, one headline per swept dimension, and the settings
whose numbers are not to be trusted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnistbench.report.plots.dimensions import DimensionSection
from mnistbench.report.plots.labels import setting_label, spread
from mnistbench.report.plots.tables import SEED_CLAIMS, claimed_setting
from mnistbench.report.plots.time_to_accuracy import fastest_to_target_lines

# A headline names at most this many values of its dimension; its section has them all.
MOST_VALUES = 4


def key_results(settings: pd.DataFrame, sections: list[DimensionSection] = ()) -> list[str]:
    """The seed reproductions, per model the fastest setting to the highest accuracy target
    reached, the most accurate setting, a headline per swept dimension (dimension_sections), and
    the settings whose times are not to be trusted."""
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
    lines += [line for line in map(dimension_headline, sections) if line]
    return lines + compile_lines(settings) + trust_lines(labelled)


# How a run's compilation was measured (runs.csv's compile_measured, train.compile_facts): the
# words that start each value, and what the key results say of it.
APART, IN_FIRST_EPOCH, NOT_SEPARABLE, NOT_RECORDED = (
    "apart from the train phase (the compile phase: build, then compile ahead on stand-in data)",
    "inside the first epoch of the train phase (train.compile_ahead: false; the first epoch's excess "
    "over the steady epoch)",
    "inside the train phase, not separable (train.compile_ahead: false with one epoch)",
    "the compile phase, how it was measured not recorded (runs of an older version)",
)


def compile_method(measured) -> str:
    """Which of APART, IN_FIRST_EPOCH, NOT_SEPARABLE, NOT_RECORDED a compile_measured value says."""
    if not isinstance(measured, str):
        return NOT_RECORDED
    if measured == "ahead":
        return APART
    return IN_FIRST_EPOCH if measured.startswith("first epoch") else NOT_SEPARABLE


def compile_lines(settings: pd.DataFrame) -> list[str]:
    """How long compilation took, per backend, as it was measured (settings.csv's compile_measured):
    apart from the train phase (its compile phase), or inside its first epoch (that epoch's excess
    over the steady epoch); the median over settings of their median, and the range. Where the
    settings were measured both ways, each way with its backends."""
    if "time_compile_median" not in settings or settings["time_compile_median"].isna().all():
        return []
    unrecorded = pd.Series(None, index=settings.index, dtype=object)  # settings.csv of an older version
    methods = settings.get("compile_measured", unrecorded).map(compile_method)
    backends = settings["backend"] if "backend" in settings else pd.Series("", index=settings.index)
    seconds = {
        APART: settings["time_compile_median"],
        IN_FIRST_EPOCH: settings.get("compile_in_first_epoch_s_median", pd.Series(np.nan, settings.index)),
        NOT_RECORDED: settings["time_compile_median"],
    }
    said = []
    for method in (APART, IN_FIRST_EPOCH, NOT_SEPARABLE, NOT_RECORDED):
        chosen = methods == method
        if chosen.any():
            said.append(f"{method}: " + _per_backend(backends[chosen], seconds.get(method), chosen))
    head = "**Compilation** (median over settings, range)"
    if len(said) == 1:
        return [f"{head}, {said[0]}."]
    return [f"{head}, measured {len(said)} ways across the settings: " + "; ".join(said) + "."]


def _per_backend(backends: pd.Series, seconds: pd.Series | None, chosen: pd.Series) -> str:
    """ "jax 0.95 s (0.90-1.00), tensorflow 1.20 s": per backend the median over settings of their
    median and the range; only the backends (and how many settings) where there is no figure."""
    if seconds is None:
        counts = backends.value_counts().sort_index()
        return ", ".join(f"{backend or 'all'} ({count} settings)" for backend, count in counts.items())
    per_backend = seconds[chosen].groupby(backends, sort=True).agg(["median", "min", "max"])
    return ", ".join(
        f"{backend or 'all'} "
        + ("unknown" if pd.isna(row["median"]) else f"{row['median']:.2f} s")
        + (f" ({row['min']:.2f}-{row['max']:.2f})" if row["min"] < row["max"] else "")
        for backend, row in per_backend.iterrows()
    )


# Key results name at most this many settings per warning; the settings table flags them all.
MOST_NAMED = 5


def trust_lines(labelled: pd.DataFrame) -> list[str]:
    """The settings whose times are not to be trusted and those whose repeats differ: each named
    up to MOST_NAMED (the slowest first), then counted, so that a large grid keeps a short list."""
    lines = []
    flagged = labelled[labelled["noisy"] | labelled["overlapped"]].sort_values("time_train_median")[::-1]
    for _, row in flagged.head(MOST_NAMED).iterrows():
        why = " and ".join(
            reason
            for reason, flag in (("noisy", row["noisy"]), ("measured with overlap", row["overlapped"]))
            if flag
        )
        lines.append(
            f"**Not to be trusted** ({why}): {row['setting']}, train phase {spread(row, 'time_train')}."
        )
    if len(flagged) > MOST_NAMED:
        lines.append(
            f"**Not to be trusted**: {len(flagged) - MOST_NAMED} more settings, "
            f"{int(flagged['noisy'].sum())} noisy and {int(flagged['overlapped'].sum())} measured with "
            "overlap in all (the columns noisy and overlapped of the settings table)."
        )
    varied = labelled[~labelled["identical_results"].astype(bool)]
    for _, row in varied.head(MOST_NAMED).iterrows():
        lines.append(
            f"**Repeats differ** in accuracy or loss: {row['setting']} "
            "(its backend is not deterministic here)."
        )
    if len(varied) > MOST_NAMED:
        lines.append(
            f"**Repeats differ**: {len(varied) - MOST_NAMED} more settings "
            "(the column identical_results of the settings table)."
        )
    return lines


def dimension_headline(section: DimensionSection) -> str | None:
    """ "**precision** against float32: mixed_bfloat16 1.60x faster, accuracy -0.10 pt (with cnn
    fixed)": per value, the median over the groups of settings that differ in the dimension only
    of its train-phase ratio to the reference value and of its accuracy change, and over how many
    groups; None where no two settings differ in the dimension only."""
    if section.empty:
        return None
    if section.dimension == "seed":
        return _seed_headline(section)
    ratios, dimension = section.ratios, section.dimension
    reference = ratios.loc[ratios[dimension] == ratios["vs"], dimension].mode().iloc[0]
    compared = ratios[(ratios["vs"] == reference) & (ratios[dimension] != reference)]
    by_value = list(compared.groupby(dimension, sort=False))
    parts = [_value_phrase(dimension, value, rows) for value, rows in by_value[:MOST_VALUES]]
    if len(by_value) > MOST_VALUES:
        parts.append(f"{len(by_value) - MOST_VALUES} more values in its section")
    return f"**{dimension}** against {reference}: " + "; ".join(parts) + f" ({_over(compared, dimension)})."


def _value_phrase(dimension: str, value, rows: pd.DataFrame) -> str:
    # A group without a test accuracy (NaN) has no change: the others' median stands without it.
    changes = rows["accuracy change (pt)"].dropna()
    change = f"accuracy {float(np.median(changes)):+.2f} pt" if len(changes) else "accuracy change unknown"
    if dimension == "threads":
        speedup, efficiency = (float(np.median(rows[column])) for column in ("speed-up", "efficiency"))
        return f"{value} threads {speedup:.2f}x speed-up (efficiency {efficiency:.0%}), {change}"
    ratio = float(np.median(rows["train ratio"]))
    if round(ratio, 2) == 1:
        return f"{value} as fast (ratio {ratio:.2f}), {change}"
    faster = f"{1 / ratio:.2f}x faster" if ratio < 1 else f"{ratio:.2f}x slower"
    return f"{value} {faster}, {change}"


def _over(compared: pd.DataFrame, dimension: str) -> str:
    """Over how many groups the medians were taken; the one group's label where there is one."""
    counts = compared.groupby(dimension).size()
    if counts.max() == 1:
        held = compared["setting"].iloc[0]
        return (
            f"train phase without compilation, with {held} fixed"
            if held
            else "train phase without compilation"
        )
    many = f"{counts.min()}-{counts.max()}" if counts.min() != counts.max() else str(counts.max())
    return f"train phase without compilation; medians over {many} groups of settings that differ in it only"


def _seed_headline(section: DimensionSection) -> str:
    """The spread that seeds alone make: per group, the range of median accuracy and the ratio of
    the slowest to the fastest median train phase across its seeds; their medians over groups."""
    spans = section.groups.groupby("group_id").agg(
        accuracy=("test_accuracy_median", lambda a: 100 * (a.max() - a.min())),
        train=("time_train_median", lambda t: t.max() / t.min()),
        seeds=("value", "nunique"),
    )
    return (
        f"**seed**: across {int(spans['seeds'].median())} seeds the test accuracy spans "
        f"{spans['accuracy'].median():.2f} pt and the slowest train phase is "
        f"{spans['train'].median():.2f}x the fastest (median over {len(spans)} settings differing "
        "in the seed only): differences smaller than these are noise."
    )
