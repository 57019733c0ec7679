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
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("mnistbench")

_held = []  # descriptors of the lock files: closing one (or exiting) frees its CPU


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _trusted_folder(folder: Path, shared: bool) -> bool:
    """A real directory (not a link) that no one else can swap files in: owned by root or by
    us, and either private to us or sticky (like /tmp: no one removes another's files)."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, os.getuid()):
        return False
    if shared:
        return info.st_mode & 0o7777 == 0o1777
    return info.st_mode & 0o077 == 0 and info.st_uid == os.getuid()


def lock_folder() -> Path:
    """The folder of CPU lock files: shared by every user's jobs on the machine, so that they
    spread out; where that folder is not what it must be (someone else's, a link, writable
    without the sticky bit), a private folder of this user's, with one warning line."""
    base = Path(tempfile.gettempdir())
    shared = base / "mnistbench-cpus"
    try:
        shared.mkdir()
        shared.chmod(0o1777)  # as /tmp: anyone may add a lock file, no one remove another's
    except FileExistsError:
        pass
    if _trusted_folder(shared, shared=True):
        return shared
    private = base / f"mnistbench-cpus-{os.getuid()}"
    log.warning("%s is not a sticky folder of root's or ours: using %s", shared, private)
    try:
        private.mkdir(mode=0o700)
    except FileExistsError:
        pass
    if not _trusted_folder(private, shared=False):
        raise OSError(f"{private} is not a private folder of ours either")
    return private


def _try_lock(path: Path):
    """An open file holding an exclusive lock on `path`, or None when another process holds it
    or the path is anything but a regular file (a link, a FIFO...): never follow, never block."""
    try:
        # Read-only is enough for flock, so another user's lock file serves as well.
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is not a regular file")
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
