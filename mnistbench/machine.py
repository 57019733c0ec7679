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

PACKAGE_DIR = Path(__file__).resolve().parent

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


def code_version(folder: Path = PACKAGE_DIR) -> str:
    """The git commit of the checkout that holds this package, with "+modified" when its tracked
    files differ from it; where there is no git checkout, a content hash of the package's code."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        changes = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode == 0 and changes.returncode == 0:
            return commit.stdout.strip()[:12] + ("+modified" if changes.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "package-sha256:" + digest.hexdigest()[:12]
