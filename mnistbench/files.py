"""Writing outputs atomically: a half-written file is never mistaken for a finished one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def atomic_write(path: str | Path, write) -> None:
    """Call write(temporary_path) beside `path`, and move the result into place only on success.

    The file is flushed to disk before the rename and the folder after it, so that after a
    power loss `path` holds either its old content or the whole new one, never an empty file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the suffix: Keras and papermill judge a file by it.
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(handle)
    try:
        write(temporary)
        _fsync(temporary, os.O_RDONLY)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes files private (0600)
        os.replace(temporary, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _fsync(path, flags) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_umask() -> int:
    """The process's umask, read once at import, without changing it even for a moment.

    os.umask can only be read by setting it, which would race with threads creating files;
    Linux shows it in /proc/self/status. Elsewhere it is read by setting it back at once,
    at import, before any thread of this package runs.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


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
