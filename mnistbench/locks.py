"""Stale Snakemake locks: a hard kill leaves .snakemake/locks behind, and then every later call
refuses to start until `snakemake --unlock`. A user who reruns after a crash expects it to work,
but a lock may only go when no snakemake can still be running: on another login node of a
shared file system, in a container, as another user. So the workflow records who holds the
lock when it starts (host, boot, PID namespace, pid, process start time), and a later call
clears the lock only when that same host, boot and namespace show that process gone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import psutil

from mnistbench.files import write_json

log = logging.getLogger("mnistbench")
HOLDER = Path(".snakemake") / "mnistbench-lock-holder.json"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def identity() -> dict:
    """This process, as another process on any host can tell whether it still runs."""
    return {
        "host": socket.gethostname(),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": _pid_namespace(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }


def record_holder(workdir) -> None:
    """Called once snakemake holds its lock (onstart): who holds it."""
    write_json(Path(workdir) / HOLDER, identity())


def forget_holder(workdir) -> None:
    """Called when snakemake ends normally (onsuccess, onerror): it releases its lock itself."""
    (Path(workdir) / HOLDER).unlink(missing_ok=True)


def _why_it_may_run(holder: dict | None) -> str | None:
    """None when the holder is provably gone; else why it may still run."""
    if holder is None:
        return "no record of who took them"
    here = identity()
    for key, what in (
        ("host", "on host"),
        ("boot_id", "in another boot of"),
        ("pid_namespace", "in a container on"),
    ):
        if holder.get(key) is None or holder.get(key) != here[key]:
            where = f"{what} {holder.get('host')}"
            return f"taken by pid {holder.get('pid')} {where}, which cannot be checked from here"
    try:
        process = psutil.Process(holder["pid"])
        if abs(process.create_time() - holder["started"]) < 1.0:
            return f"taken by pid {holder['pid']}, which still runs"
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return f"taken by pid {holder['pid']}, which cannot be checked"
    return None  # that pid now belongs to another process: the holder is gone


def clear_stale_locks(workdir: str | Path) -> bool:
    """Remove the locks of `workdir` when their holder is provably gone; True if removed.
    Otherwise keep them and say, in one line, how to remove them if no snakemake runs."""
    workdir = Path(workdir).resolve()
    locks = workdir / ".snakemake" / "locks"
    stale = list(locks.glob("*.lock")) if locks.is_dir() else []
    if not stale:
        return False
    try:
        holder = json.loads((workdir / HOLDER).read_text())
    except (OSError, ValueError):
        holder = None
    why = _why_it_may_run(holder)
    if why:
        log.warning(
            "%s is locked (%s); if no snakemake runs there any more, run `snakemake --unlock` once",
            workdir,
            why,
        )
        return False
    for path in stale:
        path.unlink(missing_ok=True)
    (workdir / HOLDER).unlink(missing_ok=True)
    log.warning("removed the lock left by snakemake pid %s, which ended without releasing it", holder["pid"])
    return True
