"""Result sets from elsewhere (another machine, version or checkout), read as untrusted input:
compare's baseline and every set of a merge.

A set is someone else's folder: its tables are read only when they are regular files of a sane
size, with no link anywhere below the folder named, and every value is checked before any job
runs. Whatever goes wrong is said in one line that names the config key and the file.
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mnistbench.grid import ADDED_SETTINGS, Run

# A runs table takes a few hundred bytes a run, so 64 MiB is far beyond any grid, while a wrong or
# hostile file is refused from its size alone, before any of it is read.
MAX_TABLE_BYTES = 64 * 2**20
# Columns that must hold numbers or nothing: the metrics and the numeric settings.
NUMERIC = (
    "time_train",
    "time_epoch_steady",
    "time_job",
    "test_accuracy",
    "repeat",
    "hidden_units",
    "learning_rate",
    "batch_size",
    "epochs",
    "seed",
    "threads",
    "target_accuracy",
)
# ...and every time to an accuracy target (time_to_0.97), whatever the targets.
NUMERIC_PREFIXES = ("time_to_", "wall_to_")


class ResultSetError(ValueError):
    """A result set that cannot be read, phrased as one line."""


@dataclass(frozen=True)
class Where:
    """Who names the set, for the one line: the config key and what the set is to the user."""

    key: str  # "config key 'compare.baseline'"
    noun: str  # "a baseline"

    def refusal(self, path, reason: str) -> ResultSetError:
        return ResultSetError(f"{self.key}: {path} {reason}")


def set_files(path, where: Where) -> dict[str, Path]:
    """The summary tables of a result set: PATH is a `results/` folder or its `summary/`."""
    path = Path(path)
    if not path.exists():
        raise where.refusal(path, "does not exist")
    for folder in (path / "summary", path):
        if os.path.lexists(folder / "runs.csv"):  # a link too: read_table refuses it by name
            return {"runs": folder / "runs.csv", "machine": folder / "machine.csv"}
    raise where.refusal(path, "holds no runs (no summary/runs.csv or runs.csv)")


def table_key(runs_table) -> tuple:
    """What identifies a set whatever it is called, from its runs table (set_files' "runs"): the
    table's device and inode, so that the same set under two names, through a link, or as a
    folder and its summary/ is one; its real path where it does not exist yet (this workflow's
    own results, built later)."""
    try:
        info = os.stat(runs_table)
        return ("inode", info.st_dev, info.st_ino)
    except OSError:
        return ("path", os.path.realpath(runs_table))


def _open_below(root: Path, path: Path, where: Where) -> int | None:
    """A descriptor of PATH, None when it is absent. Each step below ROOT is opened relative to the
    last one without following links, so that none can be swapped for a link between check and use."""
    parts, descriptors, step = path.relative_to(root).parts, [], root
    try:
        descriptors.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
        for depth, name in enumerate(parts, start=1):
            step = root.joinpath(*parts[:depth])
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat refuses it next.
            kind = os.O_NONBLOCK if depth == len(parts) else os.O_DIRECTORY
            descriptors.append(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | kind, dir_fd=descriptors[-1]))
        return descriptors.pop()
    except FileNotFoundError:
        return None
    except OSError as error:  # a link fails with ELOOP, or ENOTDIR for a folder: say which it was
        link = step != root and os.path.islink(step)
        reason = f"is a symbolic link; {where.noun} must hold regular files only"
        raise where.refusal(step, reason if link else f"cannot be opened ({error.strerror})") from None
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _read_capped(path: Path, descriptor: int, where: Where) -> bytes:
    try:
        info, data = os.fstat(descriptor), b""
        if not stat.S_ISREG(info.st_mode):
            raise where.refusal(path, f"is not a regular file; {where.noun} must hold regular files only")
        if info.st_size <= MAX_TABLE_BYTES:  # a huge file is refused without reading any of it
            with os.fdopen(descriptor, "rb", closefd=False) as handle:
                data = handle.read(MAX_TABLE_BYTES + 1)  # it may have grown since fstat
    finally:
        os.close(descriptor)
    if max(info.st_size, len(data)) > MAX_TABLE_BYTES:
        most = f"the most {where.noun} table may be"
        raise where.refusal(path, f"is larger than {MAX_TABLE_BYTES // 2**20} MiB, {most}")
    return data


def _parse(path: Path, data: bytes, where: Where) -> pd.DataFrame:
    try:
        table = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        raise where.refusal(path, "is empty, not a CSV table") from None
    except pd.errors.ParserError as error:  # pandas names the line (the header is line 1)
        reason = " ".join(str(error).split()).removeprefix("Error tokenizing data. C error: ")
        raise where.refusal(path, f"is not a CSV table ({reason})") from None
    except UnicodeDecodeError as error:
        raise where.refusal(path, f"is not UTF-8 text (byte {error.start})") from None
    if not isinstance(table.index, pd.RangeIndex):  # pandas made the first column the index
        raise where.refusal(path, "has more fields in every data row than in its header")
    return table


def _refuse_first(path: Path, values: pd.Series, bad: pd.Series, reason: str, where: Where) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = "" if pd.isna(values.iloc[row]) else str(values.iloc[row])[:40]
        raise where.refusal(path, f"data row {row + 1} (1-based), column {values.name!r}: {value!r} {reason}")


def _check_values(path: Path, table: pd.DataFrame, where: Where) -> pd.DataFrame:
    """TABLE with its numeric columns as numbers, once every value there is a number or empty."""
    numeric = [c for c in table if c in NUMERIC or str(c).startswith(NUMERIC_PREFIXES)]
    for column in numeric:
        numbers = pd.to_numeric(table[column], errors="coerce")
        _refuse_first(path, table[column], numbers.isna() & table[column].notna(), "is not a number", where)
        table[column] = numbers
    if "status" in table:
        status = table["status"]
        number = pd.to_numeric(status, errors="coerce").notna()
        _refuse_first(path, status, status.isna() | number, "is not a status (text such as ok)", where)
    return table


def read_table(root, path, where: Where) -> pd.DataFrame | None:
    """The CSV table PATH inside the set's folder ROOT (None when absent), read only as a regular
    file with no link at any level below ROOT, within MAX_TABLE_BYTES, every row checked."""
    path = Path(path)
    descriptor = _open_below(Path(root), path, where)
    if descriptor is None:
        return None
    return _check_values(path, _parse(path, _read_capped(path, descriptor, where), where), where)


def with_default_settings(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """RUNS with the settings added after results existed (hardware, target) that it lacks filled
    with their defaults, which those runs used (grid.Run holds them, checked against the schema);
    and the columns filled. Read as empty instead, each of its settings would match no other set's."""
    defaults = Run().settings()
    absent = [name for name in ADDED_SETTINGS if name not in runs.columns]
    return runs.assign(**{name: defaults[name] for name in absent}), absent


def default_values(columns) -> str:
    """ "threads 1, device cpu": the defaults with_default_settings gave these columns."""
    defaults = Run().settings()
    return ", ".join(f"{name} {'none' if defaults[name] is None else defaults[name]}" for name in columns)


def _refuse_merged(path, runs: pd.DataFrame, where: Where) -> None:
    """A merge's own runs table (its rows carry their machine) pools several machines' runs."""
    if "machine" in runs.columns:
        names = list(dict.fromkeys(str(name) for name in runs["machine"].dropna()))
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise where.refusal(
            path, f"is a merged result set of {len(names)} machines ({shown}); name its sets instead"
        )


def read_set(path, where: Where, needed) -> dict:
    """The set's runs and machine tables (machine empty when absent), checked whole, and the
    settings it lacked that were filled with their defaults ("defaulted"); the runs table must
    have the columns `needed`. A merged set is refused: its machines are to be named one by one."""
    files = set_files(path, where)
    runs = read_table(path, files["runs"], where)
    if runs is None:  # gone since set_files looked
        raise where.refusal(files["runs"], "does not exist")
    _refuse_merged(path, runs, where)
    runs, defaulted = with_default_settings(runs)
    missing = [column for column in needed if column not in runs.columns]
    if missing:
        raise where.refusal(
            files["runs"], f"was made by an incompatible version of the workflow (no column {missing[0]!r})"
        )
    if runs.empty:
        raise where.refusal(files["runs"], "holds no runs")
    machine = read_table(path, files["machine"], where)
    return {"runs": runs, "machine": pd.DataFrame() if machine is None else machine, "defaulted": defaulted}


# OWASP's advice against CSV injection: a spreadsheet runs a cell that starts with one of these
# as a formula (=HYPERLINK(...), =cmd|...), and a quote in front makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value):
    """VALUE, quoted when a spreadsheet would run it; numbers, the placeholder "-" (missing) and
    texts that are plain numbers ("-0.5") stay as they are."""
    if not isinstance(value, str) or value == "-" or not value.startswith(FORMULA_STARTS):
        return value
    return value if PLAIN_NUMBER.fullmatch(value) else f"'{value}"


def spreadsheet_safe_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every text cell of TABLE spreadsheet_safe; only text columns are looked at (fast at 20,000 rows)."""
    texts = table.select_dtypes(exclude="number").columns
    return table.assign(**{str(c): table[c].map(spreadsheet_safe) for c in texts}) if len(texts) else table
