"""Stale Snakemake locks: a hard kill leaves .snakemake/locks behind, and then every later call
refuses to start until `snakemake --unlock`. A user who reruns after a crash expects it to work."""

from __future__ import annotations

import logging
from pathlib import Path

import psutil

log = logging.getLogger("mnistbench")


def _is_snakemake(cmdline: list[str]) -> bool:
    """`snakemake ...`, `python -m snakemake ...` or `python .../bin/snakemake ...`."""
    head = [Path(part).name for part in cmdline[:3]]
    return head[:1] == ["snakemake"] or head[1:3] == ["-m", "snakemake"] or head[1:2] == ["snakemake"]


def _snakemake_running_in(workdir: Path) -> bool:
    """Another snakemake process on this machine whose working directory is `workdir`."""
    me = psutil.Process()
    ours = {me.pid, *(parent.pid for parent in me.parents())}
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = process.info
        if info["pid"] in ours or not info["cmdline"] or not info["cwd"]:
            continue
        if _is_snakemake(info["cmdline"]) and Path(info["cwd"]).resolve() == workdir:
            return True
    return False


def clear_stale_locks(workdir: str | Path) -> bool:
    """Remove the locks of `workdir` when no snakemake on this machine runs there; True if removed."""
    workdir = Path(workdir).resolve()
    locks = workdir / ".snakemake" / "locks"
    stale = [path for path in locks.glob("*.lock")] if locks.is_dir() else []
    if not stale or _snakemake_running_in(workdir):
        return False
    for path in stale:
        path.unlink(missing_ok=True)
    log.warning("removed a stale lock left by a snakemake that was killed in %s", workdir)
    return True
