"""Installs of the workflow as a Python user makes them, for tests/test_install*.py.

Each environment is a real virtualenv of its own that sees this checkout's installed
dependencies (a .pth line naming their folder) but not its install of mnistbench, since only a
site folder's own .pth files are read. Snakemake is started as its console script starts it,
without the working folder on the module path (python -P), so that nothing the checkout holds
is found by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml
from conftest import REPO, copy_workflow, cpu_turn, without_ceiling, write_config

# What a pip install needs beside the workflow files (copy_workflow copies mnistbench/).
PACKAGE_FILES = ("snakemake_logger_plugin_mnistbench", "pyproject.toml")


def checkout(folder: Path) -> Path:
    """A copy of the checkout as a user has it: the workflow, the package and the .test grid
    (without the ceiling probes, as the tests' own grids)."""
    copy = copy_workflow(folder)
    for name in PACKAGE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (copy / name).write_bytes(source.read_bytes())
    (copy / ".test").mkdir()
    (copy / ".test/mnist-small.npz").write_bytes((REPO / ".test/mnist-small.npz").read_bytes())
    config = yaml.safe_load((REPO / ".test/config.yaml").read_text())
    write_config(copy / ".test/config.yaml", without_ceiling(config))
    return copy


def environment(folder: Path) -> Path:
    """A new virtualenv's python that sees the checkout's dependencies, Snakemake among them,
    and no mnistbench."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin/python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The dependencies' data files (nbconvert's templates, Jupyter's kernel spec) live under the
    # environment's prefix, as they would where the dependencies were installed into it.
    (folder / "share").symlink_to(Path(sys.prefix) / "share")
    return python


def pip_install(python: Path, *arguments: str) -> None:
    """pip of this checkout's environment installing into PYTHON's (no download: --no-deps, and
    the build backend is the one the dependencies hold)."""
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    command += ["--disable-pip-version-check", "--no-deps", "--no-build-isolation", *arguments]
    subprocess.run(command, check=True, capture_output=True, text=True)


def run_dot_test(python: Path, folder: Path, *targets: str) -> str:
    """The .test grid (or TARGETS of it), run in FOLDER as docs/development.md says, by Snakemake of
    PYTHON's environment; its console."""
    command = [str(python), "-P", "-m", "snakemake", "--directory", ".test"]
    command += ["--configfile", ".test/config.yaml", "--cores", "2", *targets]
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with cpu_turn():
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console
    return console


def assert_mnistbench_console(console: str, folder: Path) -> None:
    assert "Training 6 run(s)" in console and "[6/6] " in console
    assert "Done in " in console and ": 6 ok (of 6 runs)." in console
    assert f"Report: {folder / '.test/results/report.html'}" in console
    assert "localrule " not in console  # Snakemake's per-job blocks stay in the full log
    assert (folder / ".test/results/report.html").stat().st_size > 0
