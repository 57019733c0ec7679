"""Pin a training process to CPUs of its own, so that a job uses the cores it was given.

Snakemake (and SLURM without cgroups) hands a job a number of cores, not which ones. Left
unpinned, TensorFlow and XLA keep extra threads spinning: a batch-4 run given one thread
burns 1.6 cores (measured here), so two such jobs side by side slow each other by 40% and a
run's time depends on its neighbour. Pinned to one CPU it trains as fast as unpinned alone.

No library hands out free CPUs between unrelated processes, hence these few lines: each CPU
has a lock file, a job takes the first `count` free ones with a non-blocking flock, and the
kernel releases them when the process ends, however it ends.

The lock files live in one folder shared by every user's jobs on the machine. Where that folder
cannot be trusted, a job runs unpinned rather than in a private folder of its own: jobs that
see different locks would be pinned to the same CPUs, which is worse than not pinning at all.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mnistbench")

_held = []  # descriptors of the lock files: closing one (or exiting) frees its CPU

# Lock files are only ever opened read-only (enough for flock), so every user can use them.
LOCK_FILE_MODE = 0o644
_OPEN_EXISTING = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # never follow a link, never wait on a FIFO
_CREATE_NEW = _OPEN_EXISTING | os.O_CREAT | os.O_EXCL
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass(frozen=True)
class Pinning:
    """What claim_cpus did, for the log and for metrics.json.

    cpus: the CPUs the process may use after the call.
    pinned: whether claim_cpus pinned it to CPUs locked for it alone.
    why_unpinned: None exactly when pinned, else one line saying why not: because pinning was
        not needed (the job may use no more CPUs than it asked for) or not possible.
    """

    cpus: list[int]
    pinned: bool
    why_unpinned: str | None = None


class UnusableLockFolder(Exception):
    """The folder of CPU locks cannot be used; the message names it and says why."""


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def lock_folder() -> Path:
    """The folder of CPU lock files shared by every user's jobs on the machine, so that they
    spread out over the CPUs (claim_cpus makes it, sticky and writable by all like /tmp)."""
    return Path(tempfile.gettempdir()) / "mnistbench-cpus"


def sharing_problem(info: os.stat_result) -> str | None:
    """Why a folder with this status is no safe place for every user's CPU locks, or None.

    It must be a directory that no one else can swap files in: owned by root or by us, and
    sticky and writable by all (like /tmp: anyone adds a lock file, no one removes another's).
    """
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if info.st_uid not in (0, os.getuid()):
        return f"belongs to uid {info.st_uid}, neither root nor us"
    if info.st_mode & 0o7777 != 0o1777:
        return f"has mode {info.st_mode & 0o7777:04o}, not 1777 (sticky, writable by all)"
    return None


def _make_shared_folder(folder: Path) -> None:
    try:
        folder.mkdir()
    except FileExistsError:
        return
    folder.chmod(0o1777)  # mkdir's mode is cut by the umask


def _open_folder(folder: Path) -> int:
    """A descriptor of `folder` itself (never of a link's target): lock files are then opened
    relative to it, so that the folder checked is the folder used."""
    try:
        return os.open(folder, _OPEN_FOLDER)
    except OSError as error:
        raise UnusableLockFolder(f"CPU lock folder {folder} {_why_unopenable(folder, error)}") from error


def _why_unopenable(folder: Path, error: OSError) -> str:
    if folder.is_symlink():  # O_NOFOLLOW with O_DIRECTORY says ENOTDIR
        return "is a symbolic link"
    if error.errno == errno.ENOTDIR:
        return "is not a folder"
    return f"cannot be opened: {error.strerror}"


def _open_shared_folder(folder: Path) -> int:
    """A descriptor of the shared lock folder, made if missing; UnusableLockFolder where it
    cannot be made or trusted."""
    try:
        _make_shared_folder(folder)
    except OSError as error:
        raise UnusableLockFolder(f"CPU lock folder {folder} cannot be made: {error.strerror}") from error
    descriptor = _open_folder(folder)
    problem = sharing_problem(os.fstat(descriptor))
    if problem:
        os.close(descriptor)
        raise UnusableLockFolder(f"CPU lock folder {folder} {problem}")
    return descriptor


def _open_lock_file(name: str, folder: int) -> int:
    """Open (or create) a lock file without O_CREAT on an existing one: with fs.protected_regular
    the kernel refuses O_CREAT on another user's file in a sticky folder, even root's."""
    for _ in range(3):  # each retry means another job created or removed it meanwhile
        try:
            return os.open(name, _OPEN_EXISTING, dir_fd=folder)
        except FileNotFoundError:
            pass
        try:
            descriptor = os.open(name, _CREATE_NEW, LOCK_FILE_MODE, dir_fd=folder)
        except FileExistsError:
            continue
        # Under umask 077 the file would be 0600: another user could never open it to flock,
        # and its CPU would look busy to them for good.
        os.fchmod(descriptor, LOCK_FILE_MODE)
        return descriptor
    raise OSError(errno.EAGAIN, f"{name} keeps appearing and disappearing")


def _try_lock(cpu: int, folder: int) -> int | None:
    """A descriptor holding an exclusive lock on the CPU's lock file, or None when another
    process holds it or the file is anything but a regular file (a link, a FIFO...)."""
    try:
        descriptor = _open_lock_file(f"cpu{cpu}.lock", folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"cpu{cpu}.lock is not a regular file")
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _lock_free_cpus(cpus: list[int], count: int, folder: int) -> dict[int, int]:
    """Up to `count` of `cpus` locked for this process: {cpu: descriptor holding its lock}."""
    locked = {}
    for cpu in cpus:
        descriptor = _try_lock(cpu, folder)
        if descriptor is not None:
            locked[cpu] = descriptor
            if len(locked) == count:
                break
    return locked


def _pin_every_thread(cpus: list[int]) -> None:
    # Every thread already running too (numpy's BLAS pool starts at import).
    for thread_id in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(thread_id), cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def _unpinned(cpus: list[int], why: str) -> Pinning:
    log.warning("%s: running unpinned", why)
    return Pinning(cpus=cpus, pinned=False, why_unpinned=why)


def claim_cpus(count: int, folder: Path | None = None) -> Pinning:
    """Pin this process (and the threads it starts later) to `count` free CPUs.

    Call before the framework is imported: threads inherit the affinity of the thread that
    starts them. `folder` holds the lock files; by default the shared lock_folder(), which is
    used only where sharing_problem finds none (a folder given is used as it is).

    Returns a Pinning. The process is left as it is, pinned=False, with a one-line
    why_unpinned, when it may already use no more than `count` CPUs (a SLURM job with
    cgroups: no need to pin, so no warning either), or else with a warning in the log when the
    OS cannot pin, the lock folder cannot be used, or fewer than `count` CPUs are free (more
    jobs than cores).
    """
    allowed = usable_cpus()
    if count >= len(allowed):
        return Pinning(
            cpus=allowed, pinned=False, why_unpinned=f"the job may use only {len(allowed)} CPUs already"
        )
    if not hasattr(os, "sched_setaffinity"):  # Linux only
        return _unpinned(allowed, "this OS cannot pin threads to CPUs")
    try:
        folder_descriptor = _open_folder(folder) if folder else _open_shared_folder(lock_folder())
    except UnusableLockFolder as error:
        return _unpinned(allowed, str(error))
    try:
        locked = _lock_free_cpus(allowed, count, folder_descriptor)
    finally:
        os.close(folder_descriptor)
    if len(locked) < count:
        for descriptor in locked.values():
            os.close(descriptor)
        return _unpinned(allowed, f"only {len(locked)} of {count} CPUs free")
    _held.extend(locked.values())
    claimed = sorted(locked)
    _pin_every_thread(claimed)
    return Pinning(cpus=claimed, pinned=True)
