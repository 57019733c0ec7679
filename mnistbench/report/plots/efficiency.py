"""The report's compute and energy section: each setting's achieved FLOP/s as a share of what its
backend measured on its device (rule ceiling), against batch size; the ceilings; GPU utilization,
power and energy, and CPU energy where RAPL was readable (never a 0 where nothing was measured)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from mnistbench.records import CEILING_KEYS as KEYS
from mnistbench.report.plots.axes import log_axis
from mnistbench.report.plots.labels import finished, setting_label, value_text
from mnistbench.report.plots.time_to_accuracy import MOST_LINES, targets_in

# The energy section's columns of runs.csv, and their headings in the report.
ENERGY_COLUMNS = {
    "gpu_utilization_mean": "GPU utilization mean (%)",
    "gpu_utilization_max": "GPU utilization max (%)",
    "gpu_power_mean_w": "GPU power mean (W)",
    "gpu_power_max_w": "GPU power max (W)",
    "gpu_energy_j": "GPU energy (J)",
    "cpu_energy_j": "CPU energy (J)",
}


def ceiling_table(records: list[dict]) -> pd.DataFrame:
    """One row per ceiling file: its settings, where it was measured, GFLOP/s and GB/s, or why
    it was not."""
    rows = []
    for record in records:
        rows.append(
            {
                **{key: record.get(key) for key in KEYS},
                "host": record.get("host"),
                "hardware": record.get("gpu_name") or record.get("cpu_model"),
                "matmul_gflops": _scaled(record.get("matmul_flops_per_s"), 1e9),
                "matrix_n": record.get("matmul_n"),
                "copy_gb_per_s": _scaled(record.get("copy_bytes_per_s"), 1e9),
                "error": record.get("error", ""),
            }
        )
    return pd.DataFrame(
        rows, columns=[*KEYS, "host", "hardware", "matmul_gflops", "matrix_n", "copy_gb_per_s", "error"]
    )


def _scaled(value, unit: float):
    return None if value is None else round(value / unit, 1)


def share_of_ceiling(runs: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """Finished runs with their ceiling's FLOP/s and achieved_flops_per_s as a percentage of it;
    runs without a measured ceiling or without achieved FLOP/s are left out."""
    if "achieved_flops_per_s" not in runs:
        return runs.iloc[:0].assign(ceiling_flops_per_s=[], percent_of_ceiling=[])
    measured = {
        tuple(value_text(record.get(key)) for key in KEYS): record["matmul_flops_per_s"]
        for record in records
        if record.get("matmul_flops_per_s")
    }
    done = finished(runs).dropna(subset=["achieved_flops_per_s"])
    keys = done[list(KEYS)].map(value_text).apply(tuple, axis=1) if len(done) else pd.Series(dtype=object)
    ceiling = keys.map(measured).astype(float)
    shares = done.assign(ceiling_flops_per_s=ceiling)
    shares = shares.assign(
        percent_of_ceiling=100 * shares["achieved_flops_per_s"] / shares["ceiling_flops_per_s"]
    )
    return shares.dropna(subset=["percent_of_ceiling"])


def ceiling_figure(runs: pd.DataFrame, records: list[dict], most: int = MOST_LINES):
    """Per setting (the median of its repeats), achieved FLOP/s in the steady epoch as a share of
    its ceiling against batch size: one line per setting but its batch size, at most `most` (the
    highest shares). (figure or None, a phrase saying which lines are drawn)."""
    shares = share_of_ceiling(runs, records)
    if shares.empty:
        return None, ""
    shares = shares.assign(line=setting_label(shares, without=("batch_size",), grid=finished(runs)))
    medians = shares.groupby(["line", "batch_size"], as_index=False)["percent_of_ceiling"].median()
    best = medians.groupby("line")["percent_of_ceiling"].max().sort_values(ascending=False)
    chosen = list(best.index[:most])
    which = (
        f"all {len(best)} lines" if len(best) <= most else f"{most} of {len(best)} lines, the highest shares"
    )
    data = medians[medians["line"].isin(chosen)]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    sns.lineplot(
        data=data,
        x="batch_size",
        y="percent_of_ceiling",
        hue="line",
        hue_order=chosen,
        marker="o",
        ax=axes,
        palette=sns.color_palette("colorblind" if len(chosen) <= 10 else "husl", len(chosen)),
    )
    axes.set(xlabel="batch size", ylabel="% of the ceiling (matmul FLOP/s)")
    log_axis(axes, "x")
    log_axis(axes, "y")
    axes.set_xticks(sorted(data["batch_size"].unique()), minor=False)  # the batch sizes that ran
    axes.xaxis.set_minor_locator(plt.NullLocator())
    axes.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}%"))
    axes.legend(title=None, fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure, which


def share_table(runs: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """Per setting: FLOPs per trained image, achieved GFLOP/s (median of its repeats) and its
    share of the ceiling, highest share first."""
    shares = share_of_ceiling(runs, records)
    columns = ["setting", "flops_train_per_image", "achieved_gflops", "ceiling_gflops", "percent_of_ceiling"]
    if shares.empty:
        return pd.DataFrame(columns=columns)
    shares = shares.assign(setting=setting_label(shares, grid=finished(runs)))
    table = shares.groupby("setting", as_index=False).agg(
        flops_train_per_image=("flops_train_per_image", "first"),
        achieved_gflops=("achieved_flops_per_s", "median"),
        ceiling_gflops=("ceiling_flops_per_s", "first"),
        percent_of_ceiling=("percent_of_ceiling", "median"),
    )
    table[["achieved_gflops", "ceiling_gflops"]] /= 1e9
    return table.sort_values("percent_of_ceiling", ascending=False)[columns].reset_index(drop=True)


def energy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting with any energy or utilization measured: the medians of its repeats, and the
    joules to the highest target that most of its repeats reached. Columns where nothing was
    measured are left out, so that no 0 stands for a missing measurement."""
    done = finished(runs)
    measured = [column for column in ENERGY_COLUMNS if column in done and done[column].notna().any()]
    if not measured:
        return pd.DataFrame()
    done = done.dropna(subset=measured, how="all")
    done = done.assign(setting=setting_label(done, grid=finished(runs)))
    table = done.groupby("setting")[measured].median()
    for label in reversed(targets_in(runs, suffix="")):
        to_target = [
            f"{column.removesuffix('_j')}_to_{label}_j" for column in ("gpu_energy_j", "cpu_energy_j")
        ]
        to_target = [column for column in to_target if column in done and done[column].notna().any()]
        if to_target:
            reached = done.groupby("setting")[to_target].median()
            for column in to_target:
                device = column.split("_")[0].upper()
                table[f"{device} energy to {label} (J)"] = reached[column]
            break
    return table.rename(columns=ENERGY_COLUMNS).reset_index()


def energy_notes(runs: pd.DataFrame) -> list[str]:
    """What was not measured, said once each: CPU energy where RAPL was not readable (per reason,
    with its hosts), and that GPU figures exist only for GPU runs."""
    notes = []
    done = finished(runs)
    if "cpu_energy_unavailable" in done:
        missing = done.dropna(subset=["cpu_energy_unavailable"])
        for reason, group in missing.groupby("cpu_energy_unavailable"):
            hosts = ", ".join(sorted(group["host"].dropna().astype(str).unique()))
            notes.append(
                f"CPU energy was not measured for {len(group)} of {len(done)} finished runs (host {hosts}): "
                f"RAPL is not readable there ({reason})."
            )
    gpu = done["gpu_name"].notna() if "gpu_name" in done else pd.Series(False, index=done.index)
    if not gpu.any():
        notes.append("No run used a GPU: there are no GPU utilization, power or energy figures.")
    elif "gpu_energy_j" in done and done.loc[gpu, "gpu_energy_j"].isna().any():
        count = int(done.loc[gpu, "gpu_energy_j"].isna().sum())
        notes.append(f"{count} GPU runs have no GPU energy: NVML (nvidia-ml-py) was not available to them.")
    return notes


def achieved_summary(runs: pd.DataFrame) -> str | None:
    """One line on the FLOPs counted, and the models left uncounted with the layers the counter
    does not know; None where there is neither."""
    parts = []
    if "flops_train_per_image" in runs and runs["flops_train_per_image"].notna().any():
        per_model = (
            runs.dropna(subset=["flops_train_per_image"]).groupby("model")["flops_train_per_image"].first()
        )
        counts = ", ".join(f"{model} {value / 1e6:.3g} MFLOP" for model, value in per_model.items())
        parts.append(f"FLOPs per trained image (forward and backward): {counts}.")
    if "flops_unknown_layers" in runs and runs["flops_unknown_layers"].notna().any():
        unknown = (
            runs.dropna(subset=["flops_unknown_layers"]).groupby("model")["flops_unknown_layers"].first()
        )
        named = "; ".join(f"{model} (layers {layers})" for model, layers in unknown.items())
        parts.append(f"Not counted, so no FLOPs or share of the ceiling: {named}.")
    return " ".join(parts) or None


def read_ceilings(paths) -> list[dict]:
    """The ceiling files' records; an unreadable file is a record with its error."""
    records = []
    for path in paths:
        try:
            records.append(json.loads(open(path).read()))
        except (OSError, ValueError) as error:
            records.append({"error": f"{path}: {error}"})
    return records
