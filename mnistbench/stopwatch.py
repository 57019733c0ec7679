"""The phases a run is timed in, as the lesson times them, and the stopwatch that times them.

Light on purpose: the summaries and the report read the phase names without importing the trainer.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pandas as pd

PHASES = ("startup", "data-load", "compile", "train", "test")


def phase_column(phase: str) -> str:
    """The column of a phase's seconds in the summary tables: "data-load" -> "time_data_load"."""
    return "time_" + phase.replace("-", "_")


class Stopwatch:
    """Named phase timings in seconds, in the order they ran, with their wall-clock start."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started: dict[str, float] = {}

    def record(self, phase: str, seconds: float, started: float | None = None) -> None:
        self.seconds[phase] = seconds
        self.started[phase] = time.time() - seconds if started is None else started

    @contextmanager
    def time(self, phase: str):
        started, start = time.time(), time.perf_counter()
        yield
        self.record(phase, time.perf_counter() - start, started)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"phase": list(self.seconds), "seconds": list(self.seconds.values())})
