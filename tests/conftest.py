"""Shared fixtures: small datasets in the real formats, a file server on 127.0.0.1, and a
helper that runs the real workflow in a scratch directory."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnistbench import readers
from mnistbench.files import save_npz

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def make_arrays(n_train: int = 300, n_test: int = 100, seed: int = 7) -> dict[str, np.ndarray]:
    """A learnable MNIST look-alike: each class is a fixed random stroke pattern plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 28, 28)) > 0.8

    def images(labels):
        noise = rng.integers(0, 60, size=(len(labels), 28, 28))
        return np.clip(templates[labels] * 200 + noise, 0, 255).astype(np.uint8)

    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    rng.shuffle(y_train)
    return {"x_train": images(y_train), "y_train": y_train, "x_test": images(y_test), "y_test": y_test}


@pytest.fixture(scope="session")
def arrays():
    return make_arrays()


@pytest.fixture(scope="session")
def formats(tmp_path_factory, arrays):
    """The same arrays written as a Keras npz, a folder of gzipped IDX files and the classic pickle."""
    root = tmp_path_factory.mktemp("formats")
    save_npz(root / "mnist.npz", arrays)
    idx = root / "idx"
    idx.mkdir()
    for key, stem in readers.IDX_FILES.items():
        readers.write_idx(idx / f"{stem}.gz", arrays[key])
    readers.write_classic_pickle(root / "mnist.pkl.gz", arrays, n_val=50)
    return {"npz": root / "mnist.npz", "idx": idx, "pickle": root / "mnist.pkl.gz", "root": root}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """serve(folder) -> base URL of a file server on 127.0.0.1 for that folder."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


WORKFLOW_FILES = (
    "Snakefile",
    "rules",
    "scripts",
    "schemas",
    "notebooks",
    "profiles",
    "envs",
    "report",
    "mnistbench",
)


def copy_workflow(target: Path, with_config: bool = False) -> Path:
    """A private copy of the workflow's files (a checkout), so that tests can edit them."""
    for name in (*WORKFLOW_FILES, *(["config.yaml"] if with_config else [])):
        source, destination = REPO / name, target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination)
    return target


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, config: dict | None, *args: str, snakefile=None) -> list[str]:
    """The command that runs the real workflow with `config` (replacing config.yaml) in `workdir`."""
    snakefile = snakefile or REPO / "Snakefile"
    command = [*SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(workdir)]
    if config is not None:
        command += ["--configfile", str(write_config(workdir / "test-config.yaml", config))]
        command += ["--replace-workflow-config"]
    return command + list(args)


def snakemake(
    workdir: Path, config: dict | None, *args: str, env: dict | None = None, check=True, snakefile=None
):
    """Run the real workflow with `config` (replacing config.yaml) in `workdir`."""
    command = snakemake_command(workdir, config, *args, snakefile=snakefile)
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def damage_prepared_data(workdir: Path, config: dict, dataset: str, snakefile=None) -> Path:
    """Build a dataset's prepared file, then truncate it: a genuine fault that makes every run
    on that dataset fail in its data-load phase while the other runs go on."""
    target = f"resources/prepared/{dataset}_scale.npz"
    snakemake(workdir, config, "--cores", "1", target, snakefile=snakefile)
    path = workdir / target
    path.write_bytes(path.read_bytes()[:3000])
    return path


def pytest_collection_modifyitems(items):
    """SLURM tests last: once SLURM's client is installed and its controller stopped, every
    snakemake start waits about 10 s (the SLURM executor plugin runs `scontrol show config`
    when it is imported), which would slow every test after them."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)
