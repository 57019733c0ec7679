"""What machine a run used: the lesson prints this table next to its timings."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata

import psutil

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
