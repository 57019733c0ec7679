"""Pin a training process to CPUs of its own, so that a job uses the cores it was given.

Snakemake (and SLURM without cgroups) hands a job a number of cores, not which ones. Left
unpinned, TensorFlow and XLA keep extra threads spinning: a batch-4 run given one thread
burns 1.6 cores (measured here), so two such jobs side by side slow each other by 40% and a
run's time depends on its neighbour. Pinned to one CPU it trains as fast as unpinned alone.

No library hands out free CPUs between unrelated processes, hence these few lines: each CPU
has a lock file, a job takes the first `count` free ones with a non-blocking flock, and the
kernel releases them when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("mnistbench")

_held = []  # open lock files: closing one (or exiting) frees its CPU


def lock_folder() -> Path:
    # Node-local, shared by every workflow of this user on this machine.
    folder = Path(tempfile.gettempdir()) / f"mnistbench-cpus-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def claim_cpus(count: int, folder: Path | None = None) -> list[int]:
    """Pin this process (and the threads it starts later) to `count` free CPUs.

    Call before the framework is imported: threads inherit the affinity of the thread that
    starts them. Returns the CPUs the process may use. When the process may already use no
    more than `count` CPUs (a SLURM job with cgroups), or fewer than `count` are free (more
    jobs than cores), it is left as it is.
    """
    if not hasattr(os, "sched_setaffinity"):  # Linux only; elsewhere jobs run unpinned
        return list(range(os.cpu_count() or 1))
    allowed = sorted(os.sched_getaffinity(0))
    if count >= len(allowed):
        return allowed
    folder = folder or lock_folder()
    claimed, handles = [], []
    for cpu in allowed:
        handle = open(folder / f"cpu{cpu}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        claimed.append(cpu)
        handles.append(handle)
        if len(claimed) == count:
            break
    if len(claimed) < count:
        for handle in handles:
            handle.close()
        log.warning("only %d of %d CPUs free: running unpinned", len(claimed), count)
        return allowed
    _held.extend(handles)
    # Every thread already running too (numpy's BLAS pool starts at import).
    for thread_id in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(thread_id), claimed)
    return claimed
