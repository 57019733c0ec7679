"""A training job as two processes: a light supervisor, and the training process it starts.

A training process can end without a word: the OOM killer, a segfault in a framework, a time
limit. The supervisor (which never imports a framework, so that the OOM killer picks the
trainer) then records the run as "crashed", with the signal or exit status and the last lines
of its logs, so that the summary and the report are still built and the next call retries it.
It also stops a training process that outlives the job's runtime, before the scheduler does,
and a training process never outlives its supervisor (killed with -9, the trainer would go on
as an orphan beside the next timed job).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mnistbench import cores
from mnistbench.grid import Run
from mnistbench.measures import machine
from mnistbench.stopwatch import Stopwatch
from mnistbench.training.cpus import usable_cpus
from mnistbench.training.run_outputs import Outcome, write_outputs

TAIL_LINES = 15
GRACE_S = 10  # between SIGTERM and SIGKILL when a training process outlives its time


def _tail(path: str, lines: int = TAIL_LINES) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# `-P`: the working folder is not put on sys.path, so a random.py there is never imported. The
# workflow folder whose package this supervisor runs goes first instead, so that the trainer runs
# the same code, whatever else is installed.
TRAINER = [
    sys.executable,
    "-P",
    "-c",
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from mnistbench.training.train import main; main(sys.argv[2])",
    str(machine.WORKFLOW_DIR),
]


def signal_name(number: int) -> str:
    """SIGKILL, SIGRTMIN+6, ...: any signal number, named where Python can name it."""
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return "unnamed"


def _how_it_ended(returncode: int, timed_out: bool, runtime_s: float | None) -> str:
    if timed_out:
        return f"stopped at its time limit of {runtime_s:.0f} s, a minute before the scheduler's"
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal_name(-returncode)})"
    return f"exited with status {returncode} without recording the run"


def _die_with_parent(parent: int):
    """For the child, between fork and exec: the kernel sends it SIGKILL when its parent dies
    (Linux); if the parent died already, it goes at once."""

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None  # not Linux: the supervisor's SIGTERM handler is all there is

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return arrange


def time_limit_s(runtime_minutes: float) -> float:
    """Seconds after which the supervisor stops its training process and records it as crashed:
    a minute before the scheduler would end the whole job (its `runtime` resource, whatever set
    it) and lose its outputs."""
    return max(60.0, runtime_minutes * 60 - 60)


def train_supervised(spec: dict) -> dict | None:
    """Run the training process of `spec` (see train.main); record a crash if it ends without
    its metrics. A job given fewer cores than the run's threads (cores.refused_on_the_node)
    records the run as failed and trains nothing. Returns the metrics written here, or None
    when the run recorded itself."""
    runtime_s = spec.get("time_limit_s")
    started_unix, load_at_start = time.time(), machine.load_sample()
    too_few = cores.refused_on_the_node(
        spec["name"], Run.of(spec["run"]).threads, spec["threads"], usable_cpus()
    )
    if too_few:  # Snakemake or the node gave less than the run's setting: never train it as that
        return _record(spec, Outcome("failed", error=too_few), started_unix, load_at_start)
    child = subprocess.Popen([*TRAINER, json.dumps(spec)], preexec_fn=_die_with_parent(os.getpid()))
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
    outcome = Outcome(
        "crashed",
        error=f"training process {how}",
        facts={"log_tail": tail, "exit_status": child.returncode, "time_limit_s": runtime_s},
    )
    return _record(spec, outcome, started_unix, load_at_start, f"training process {how}; recorded as crashed")


def _record(spec: dict, outcome: Outcome, started_unix: float, load_at_start: dict, line: str = "") -> dict:
    """Write the outputs of a run that its training process did not record, its log line last."""
    Path(spec["framework_log"]).touch()  # a log of the job, even where no trainer ever wrote it
    with open(spec["log"], "a") as log_file:
        print(line or outcome.error, file=log_file)
    return write_outputs(
        Run.of(spec["run"]),
        spec["name"],
        spec["repeat"],
        spec["outputs"],
        outcome,
        Stopwatch(),
        spec["threads"],
        started_unix,
        load_at_start,
    )
