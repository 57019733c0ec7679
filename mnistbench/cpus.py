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

_held = []  # descriptors of the lock files: closing one (or exiting) frees its CPU


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def lock_folder() -> Path:
    # Node-local and shared by every user's jobs on the machine, so that they spread out.
    folder = Path(tempfile.gettempdir()) / "mnistbench-cpus"
    try:
        folder.mkdir()
        folder.chmod(0o1777)  # as /tmp: anyone may add a lock file, no one remove another's
    except FileExistsError:
        pass
    return folder


def _try_lock(path: Path):
    """An open file holding an exclusive lock on `path`, or None when another process holds it."""
    try:
        # Read-only is enough for flock, so another user's lock file serves as well.
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def claim_cpus(count: int, folder: Path | None = None) -> list[int]:
    """Pin this process (and the threads it starts later) to `count` free CPUs.

    Call before the framework is imported: threads inherit the affinity of the thread that
    starts them. Returns the CPUs the process may use. When the process may already use no
    more than `count` CPUs (a SLURM job with cgroups), or fewer than `count` are free (more
    jobs than cores), it is left as it is.
    """
    allowed = usable_cpus()
    if count >= len(allowed) or not hasattr(os, "sched_setaffinity"):  # Linux only
        return allowed
    try:
        folder = folder or lock_folder()
    except OSError as error:
        log.warning("no folder for CPU locks (%s): running unpinned", error)
        return allowed
    claimed, handles = [], []
    for cpu in allowed:
        handle = _try_lock(folder / f"cpu{cpu}.lock")
        if handle is None:
            continue
        claimed.append(cpu)
        handles.append(handle)
        if len(claimed) == count:
            break
    if len(claimed) < count:
        for handle in handles:
            os.close(handle)
        log.warning("only %d of %d CPUs free: running unpinned", len(claimed), count)
        return allowed
    _held.extend(handles)
    # Every thread already running too (numpy's BLAS pool starts at import).
    for thread_id in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(thread_id), claimed)
    return claimed
