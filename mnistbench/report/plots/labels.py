"""Labels of settings and the spread of a setting's repeats, for every table and figure alike.

A label names the settings that vary in the grid, and only those: in a grid that sweeps batch
size and learning rate every setting reads like "b8 lr0.01", so no two settings read the same,
and nothing that all of them share takes room. A grid of one setting falls back to a short full
label, so that it still says what ran.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnistbench.grid import ADDED_SETTINGS, MLP_ONLY, PRECISION_TAGS, SETTINGS, added_tags

# The network is one token: the model with, for an mlp, its hidden units and activation, and for
# a network of the user's own, its name (its digest only where one name has two definitions).
NETWORK = ("model", *MLP_ONLY, "network")
DIGEST_SHOWN = 6
PRECISION_NAMES = {**PRECISION_TAGS, "float32": "fp32"}
JIT_NAMES = {"auto": "jit-auto", "True": "xla", "False": "noxla"}
# How each setting but the network reads in a label; "-" is a value that does not apply.
TOKENS = {
    "dataset": str,
    "optimizer": str,
    "learning_rate": lambda v: "lrdefault" if v == "-" else f"lr{v}",
    "batch_size": lambda v: f"b{v}",
    "epochs": lambda v: f"e{v}",
    "target_accuracy": lambda v: "no-target" if v == "-" else f"to{v}",
    "normalize": lambda v: f"norm-{v}",
    "seed": lambda v: f"s{v}",
    "backend": str,
    "threads": lambda v: f"t{v}",
    "device": str,
    "precision": lambda v: PRECISION_NAMES.get(v, v),
    "jit_compile": lambda v: JIT_NAMES.get(v, f"jit-{v}"),
    "partition": lambda v: "p-none" if v == "-" else f"p-{v}",
}


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def value_text(value) -> str:
    """A setting's value as one text wherever it comes from: CSV reads 64 as 64.0 beside a NaN,
    and True as "True"; a value that does not apply (None, NaN) is "-"."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return "-" if pd.isna(value) else str(value)


def setting_texts(table: pd.DataFrame, names=SETTINGS) -> pd.DataFrame:
    """The settings columns of `table` as value_text."""
    return pd.DataFrame({name: _texts(table[name]) for name in names if name in table}, index=table.index)


def _texts(values: pd.Series) -> pd.Series:
    """value_text of each value, worked out once per distinct value (a grid has few)."""
    missing = values.isna()
    lookup = {value: value_text(value) for value in values[~missing].unique()}
    return values.astype(object).where(missing, values.map(lookup)).where(~missing, "-")


def varying_settings(grid: pd.DataFrame) -> list[str]:
    """The settings that take more than one value in `grid`, in the order of grid.SETTINGS."""
    texts = setting_texts(grid)
    return [name for name in texts if texts[name].nunique() > 1]


def model_label(runs: pd.DataFrame, without: tuple[str, ...] = ()) -> pd.Series:
    """ "mlp64-linear", "cnn", "widenet-8": the network; `without` leaves out hidden_units or
    activation. A network name that two definitions share (two files under one name, in two
    result sets) gets each one's digest: "widenet-8@3f5c1a"."""
    hidden = "" if "hidden_units" in without else runs["hidden_units"].map(value_text)
    activation = "" if "activation" in without else "-" + runs["activation"].astype(str)
    label = pd.Series(
        np.where(runs["model"] == "mlp", "mlp" + hidden + activation, runs["model"]), index=runs.index
    )
    if "network" in runs and runs["network"].notna().any():
        digests = runs["network"].where(runs["network"].notna())
        shared = digests.groupby(runs["model"]).transform("nunique") > 1
        label = label.where(~shared, label + "@" + digests.astype(str).str[:DIGEST_SHOWN])
    return label


def spread(row, column: str, unit: str = " s", digits: int = 2) -> str:
    """A timed column of settings.csv as "median [q1-q3] (n=...)"."""
    median = row[f"{column}_median"]
    if pd.isna(median):
        return "-"
    q1, q3 = row[f"{column}_q1"], row[f"{column}_q3"]
    return f"{median:.{digits}f}{unit} [{q1:.{digits}f}-{q3:.{digits}f}] (n={row['n']})"


def full_label(table: pd.DataFrame, without: tuple[str, ...] = ()) -> pd.Series:
    """The short full label: network, optimizer, batch, epochs, backend, and the settings added
    later (hardware, target) away from their defaults (grid.added_tags, as in run names)."""
    texts = setting_texts(table)
    parts = [] if "model" in without else [model_label(table, without)]
    parts += [
        texts[name].map(TOKENS[name])
        for name in ("optimizer", "batch_size", "epochs", "backend")
        if name not in without
    ]
    kept = table[[c for c in ADDED_SETTINGS if c in table and c not in without]]
    parts.append(pd.Series([" ".join(added_tags(row)) for row in kept.to_dict("records")], index=table.index))
    return _joined(parts, table.index)


def setting_label(
    table: pd.DataFrame, without: tuple[str, ...] = (), grid: pd.DataFrame | None = None
) -> pd.Series:
    """Each row's setting named by the settings that vary in `grid` (by default `table` itself),
    less those in `without`; the short full label where none varies."""
    varying = [name for name in varying_settings(table if grid is None else grid) if name not in without]
    if not varying:
        return full_label(table, without)
    texts = setting_texts(table)
    parts = []
    if any(name in varying for name in NETWORK) and "model" not in without:
        parts.append(model_label(table, without))
    parts += [texts[name].map(TOKENS[name]) for name in varying if name not in NETWORK]
    return _joined(parts, table.index)


def _joined(parts: list[pd.Series], index) -> pd.Series:
    if not parts or not len(index):
        return pd.Series("", index=index, dtype=object)
    frame = pd.concat([part.astype(str) for part in parts], axis=1)
    return frame.apply(lambda row: " ".join(token for token in row if token), axis=1).astype(object)


def is_number(text: str) -> bool:
    """Whether a setting's value as text (a target label, a CSV cell) reads as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True
