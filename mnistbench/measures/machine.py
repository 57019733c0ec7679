"""What machine a run used: the lesson prints this table next to its timings."""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil

# This file is mnistbench/measures/machine.py: the package is two folders up, the workflow three.
PACKAGE_DIR = Path(__file__).resolve().parents[1]

PACKAGES = ("tensorflow", "keras", "jax", "numpy", "pandas", "snakemake")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def host() -> dict:
    """Cheap attributes, recorded by every training job (and so per cluster node)."""
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def describe() -> dict:
    """The full table; py-cpuinfo takes about a second, so only the aggregation calls this."""
    import cpuinfo

    cpu = cpuinfo.get_cpu_info()
    return {
        **host(),
        "cpu_model": cpu.get("brand_raw", ""),
        "cpu_arch": cpu.get("arch", platform.machine()),
        "cpu_mhz": cpu.get("hz_advertised_friendly", ""),
        "python_executable": sys.executable,
        **{f"version_{name}": version for name, version in versions().items()},
    }


def stopwatch_attributes() -> dict[str, str]:
    """The machine attributes that cloudmesh's StopWatch prints, under its names."""
    uname = platform.uname()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid())
    return {
        "cpu.cores": str(psutil.cpu_count(logical=True)),
        "mem.total": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python.version": platform.python_version(),
        "uname.node": uname.node,
        "uname.release": uname.release,
        "uname.system": uname.system,
        "uname.machine": uname.machine,
        "sys.platform": sys.platform,
        "user": user,
        "platform.version": uname.version,
    }


def load_sample() -> dict:
    """What else the machine was doing: 1-minute load average and the current CPU frequency."""
    frequency = psutil.cpu_freq()
    return {
        "load_average": round(psutil.getloadavg()[0], 2),
        "cpu_mhz": round(frequency.current) if frequency else None,
    }


# The workflow's folder: the package's parent. Every process of a call imports the package of the
# folder that runs (the Snakefile puts it first on the path), so this is that folder.
WORKFLOW_DIR = PACKAGE_DIR.parent
# What the workflow runs, where it is not a git checkout of its own: the digest covers these.
SOURCE_PATHS = ("Snakefile", "mnistbench", "scripts", "rules", "notebooks", "schemas", "envs")
NOT_SOURCE = ("__pycache__", ".ipynb_checkpoints")


def code_version(folder: Path = WORKFLOW_DIR) -> str:
    """The workflow's own git commit, with "+modified" when its tracked files differ from it,
    where `folder` is the top of a git checkout; otherwise a digest of its source files. Never the
    commit of an outer repository that merely contains the folder."""
    folder = Path(folder).resolve()
    try:
        top = _git(folder, "rev-parse", "--show-toplevel")
        if top is not None and Path(top).resolve() == folder:
            commit = _git(folder, "rev-parse", "HEAD")
            changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
            if commit is not None and changes is not None:
                return commit[:12] + ("+modified" if changes else "")
    except (OSError, subprocess.TimeoutExpired):
        pass  # no git here: the digest says what ran
    return "source-sha256:" + source_digest(folder)[:12]


def _git(folder: Path, *arguments: str) -> str | None:
    """git's answer, stripped, or None where it fails (not a checkout, a foreign owner...)."""
    result = subprocess.run(
        ["git", "-C", str(folder), *arguments], capture_output=True, text=True, timeout=10
    )
    return result.stdout.strip() if result.returncode == 0 else None


def source_files(folder: Path) -> list[Path]:
    """The workflow's source files under `folder` (SOURCE_PATHS), in a stable order."""
    files = []
    for name in SOURCE_PATHS:
        path = folder / name
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [
            p for p in found if p.suffix != ".pyc" and not set(p.relative_to(folder).parts) & set(NOT_SOURCE)
        ]
    return files


def source_digest(folder: Path) -> str:
    """sha256 over the source files' paths (relative to `folder`) and contents."""
    digest = hashlib.sha256()
    for path in source_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
