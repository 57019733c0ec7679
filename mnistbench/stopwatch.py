"""The phases a run is timed in, as the lesson times them, and the stopwatch that times them.

Light on purpose: the summaries and the report read the phase names without importing the trainer.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pandas as pd

# eval: the evaluations of every epoch but the last (whose evaluation is the test phase).
PHASES = ("startup", "data-load", "compile", "train", "eval", "test")


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


# cloudmesh-common's StopWatch.benchmark() columns, as the lesson prints them; its StopWatch.load
# reads a log back by these names (tests/test_stopwatch_format.py checks it does).
CLOUDMESH_COLUMNS = (
    "timer",
    "status",
    "time",
    "sum",
    "start",
    "tag",
    "msg",
    "uname.node",
    "user",
    "uname.system",
    "platform.version",
)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([rule, line(header), rule, *map(line, rows), rule])


def benchmark_block(watch: Stopwatch, tag: str, attributes: dict[str, str], status: str = "ok") -> str:
    """The phases in the format of cloudmesh-common's StopWatch.benchmark(): a machine-attribute
    table, a timer table, and `# csv` lines. Written by hand so that the training process does not
    import cloudmesh (and its many dependencies) at every run."""
    rows = []
    for phase in ("data-load", "compile", "train", "eval", "test"):
        if phase not in watch.seconds:
            continue
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(watch.started[phase]))
        seconds = f"{watch.seconds[phase]:.3f}"
        rows.append(
            [phase, status, seconds, seconds, start, tag, "", *(attributes[k] for k in CLOUDMESH_COLUMNS[7:])]
        )
    machine = _text_table(["Machine Attribute", "Value"], [[k, v] for k, v in attributes.items()])
    timers = _text_table(
        ["Name", "Status", "Time", "Sum", "Start", "tag", "msg", "Node", "User", "OS", "Version"], rows
    )
    # A comma inside a value would shift the columns of a CSV line: none may hold one.
    csv = [",".join(["# csv", *CLOUDMESH_COLUMNS])]
    csv += [",".join(["# csv", *(str(cell).replace(",", " ") for cell in row)]) for row in rows]
    return "\n".join(["", machine, "", timers, "", *csv, ""])
