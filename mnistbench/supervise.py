"""A training job as two processes: a light supervisor, and the training process it starts.

A training process can end without a word: the OOM killer, a segfault in a framework, a time
limit. The supervisor (which never imports a framework, so that the OOM killer picks the
trainer) then records the run as "crashed", with the signal or exit status and the last lines
of its logs, so that the summary and the report are still built and the next call retries it.
It also stops a training process that outlives the job's runtime, before the scheduler does.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from mnistbench import machine
from mnistbench.grid import Run
from mnistbench.stopwatch import Stopwatch
from mnistbench.train import Outcome, write_outputs

TAIL_LINES = 15
GRACE_S = 10  # between SIGTERM and SIGKILL when a training process outlives its time


def _tail(path: str, lines: int = TAIL_LINES) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _how_it_ended(returncode: int, timed_out: bool, runtime_s: float | None) -> str:
    if timed_out:
        return f"stopped after its runtime of {runtime_s:.0f} s (train.runtime), before the scheduler's limit"
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
    return f"exited with status {returncode} without recording the run"


def train_supervised(spec: dict, runtime_s: float | None = None) -> dict | None:
    """Run the training process of `spec` (see train.main); record a crash if it ends without
    its metrics. Returns the crash's metrics, or None when the run recorded itself."""
    started_unix, load_at_start = time.time(), machine.load_sample()
    command = [sys.executable, "-c", "import sys; from mnistbench.train import main; main(sys.argv[1])"]
    child = subprocess.Popen([*command, json.dumps(spec)])
    # A SIGTERM to this supervisor (a scheduler's time limit, a user's kill) reaches the trainer.
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    timed_out = False
    try:
        child.wait(timeout=runtime_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        child.terminate()
        try:
            child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if child.returncode == 0 and not timed_out and Path(spec["outputs"]["metrics"]).exists():
        return None
    how = _how_it_ended(child.returncode, timed_out, runtime_s)
    tail = _tail(spec["log"]) + _tail(spec["framework_log"])
    with open(spec["log"], "a") as log_file:
        print(f"training process {how}; recorded as crashed", file=log_file)
    outcome = Outcome(
        "crashed", error=f"training process {how}", facts={"log_tail": tail, "exit_status": child.returncode}
    )
    return write_outputs(
        Run(**spec["run"]),
        spec["name"],
        spec["repeat"],
        spec["outputs"],
        outcome,
        Stopwatch(),
        spec["threads"],
        started_unix,
        load_at_start,
    )
