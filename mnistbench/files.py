"""Writing outputs atomically: a half-written file is never mistaken for a finished one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def atomic_write(path: str | Path, write) -> None:
    """Call write(temporary_path) beside `path`, and move the result into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the suffix: Keras and papermill judge a file by it.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes files private (0600)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Uncompressed: it loads about ten times faster than a compressed npz."""

    def write(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)


def write_csv(path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda temporary: frame.to_csv(temporary, index=False))


def write_json(path, payload: dict) -> None:
    def write(temporary):
        Path(temporary).write_text(json.dumps(payload, indent=2, default=str) + "\n")

    atomic_write(path, write)
