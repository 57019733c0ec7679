"""Shared fixtures: small datasets in the real formats, a file server on 127.0.0.1, and a
helper that runs the real workflow in a scratch directory."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnistbench.data import readers
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


def make_image_set(
    image_shape=(20, 24, 3), n_classes: int = 5, n_train: int = 300, n_test: int = 100, seed: int = 11
) -> dict[str, np.ndarray]:
    """A learnable image set of the user's own, neither 28x28 nor ten classes: each class a fixed
    random pattern plus noise; images (n, *image_shape), labels int64 as numpy gives them."""
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, *image_shape)) > 0.7

    def images(labels):
        noise = rng.integers(0, 60, size=(len(labels), *image_shape))
        return np.clip(templates[labels] * 190 + noise, 0, 255).astype(np.uint8)

    y_train = np.arange(n_train) % n_classes
    y_test = np.arange(n_test) % n_classes
    rng.shuffle(y_train)
    return {"x_train": images(y_train), "y_train": y_train, "x_test": images(y_test), "y_test": y_test}


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    """The arrays as a folder of IDX files: images with channels under their idx4 names,
    uncompressed; labels gzipped under MNIST's names."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in readers.IDX_FILES.items():
        if key.startswith("x_") and arrays[key].ndim == 4:
            readers.write_idx(folder / stem.replace("idx3", "idx4"), arrays[key], compress=False)
        else:
            readers.write_idx(folder / f"{stem}.gz", arrays[key])
    return folder


@pytest.fixture(scope="session")
def arrays():
    return make_arrays()


@pytest.fixture(scope="session")
def own_set():
    """A user's own image set: 20x24 RGB, five classes (see make_image_set)."""
    return make_image_set()


@pytest.fixture(scope="session")
def own_formats(tmp_path_factory, own_set):
    """The user's own set as a `.npz` written by plain numpy (int64 labels) and as IDX files."""
    root = tmp_path_factory.mktemp("own")
    np.savez(root / "shapes5.npz", **own_set)
    return {"npz": root / "shapes5.npz", "idx": write_idx_folder(root / "shapes5-idx", own_set), "root": root}


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


def run_on_jax(script: str, *arguments: str) -> dict:
    """SCRIPT run in a process of its own on Keras's JAX backend (CPU); the JSON of its last line.
    A process apart, since the test process may have another backend loaded."""
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=REPO,
        env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, config: dict | None, *args: str, snakefile=None) -> list[str]:
    """The command that runs the real workflow with `config` (replacing config.yaml) in `workdir`."""
    snakefile = snakefile or REPO / "Snakefile"
    command = [*SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(workdir)]
    if config is not None:
        config = without_ceiling(config)
        command += ["--configfile", str(write_config(workdir / "test-config.yaml", config))]
        command += ["--replace-workflow-config"]
    return command + list(args)


def without_ceiling(config: dict) -> dict:
    """The tests' grids leave the ceiling probes out (a framework import and two probes, 5-8 s a
    backend on 2 vCPUs, in every test) unless they set report: ceiling; the .test grid, run as
    a user runs it, measures them and its tests check them."""
    report = config.get("report") or {}
    return config if "ceiling" in report else {**config, "report": {**report, "ceiling": False}}


def snakemake(
    workdir: Path, config: dict | None, *args: str, env: dict | None = None, check=True, snakefile=None
):
    """Run the real workflow with `config` (replacing config.yaml) in `workdir`."""
    command = snakemake_command(workdir, config, *args, snakefile=snakefile)
    with cpu_turn():
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


# The tests run in two processes at once (pytest-xdist, `-n 2` in pyproject.toml): what they
# share lives in a folder of the session that every worker sees.
_SESSION = {"folder": None, "turn_held": False}


@pytest.fixture(scope="session", autouse=True)
def session_folder(tmp_path_factory) -> Path:
    """The session's folder shared by the xdist workers (each has a base folder of its own
    below it), or the base folder when there are no workers."""
    base = tmp_path_factory.getbasetemp()
    folder = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    _SESSION["folder"] = folder
    return folder


@contextlib.contextmanager
def cpu_turn(alone: bool = False):
    """Training jobs pin themselves to CPUs locked in one folder for the whole machine
    (mnistbench/training/cpus.py), so the jobs of two workers spread over the CPUs. A test that needs
    every CPU free (two jobs at once, SLURM) takes its turn alone; every other test, and each
    workflow call of a fixture, shares it. A process never waits on itself: a turn taken
    already covers what runs inside it."""
    if _SESSION["folder"] is None or _SESSION["turn_held"]:
        yield
        return
    with open(_SESSION["folder"] / "cpus.turn", "a") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)  # released when closed
        _SESSION["turn_held"] = True
        try:
            yield
        finally:
            _SESSION["turn_held"] = False


@pytest.fixture(autouse=True)
def _cpu_turn(request):
    with cpu_turn(alone=request.node.get_closest_marker("alone") is not None):
        with contextlib.ExitStack() as stack:
            for marker in request.node.iter_markers("apart_from"):
                stack.enter_context(apart_from(marker.args[0]))
            yield


@contextlib.contextmanager
def apart_from(name: str):
    """Tests marked `apart_from(name)` with the same name never run at the same time (one
    holds every CPU lock, another needs a CPU free); each runs beside any other test."""
    with open(_SESSION["folder"] / f"apart-{name}", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def built_once(name: str, build) -> Path:
    """The folder `name` of the session, built by build(folder) once for all workers: the
    first to get here builds it, the others wait and then read it (pytest-xdist's FileLock
    pattern). A build that failed is tried again by the next test that needs it."""
    folder = _SESSION["folder"] / name
    with open(f"{folder}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


# The shipped small test configuration as a user runs it (paths relative to its folder).
DOT_TEST = ["--configfile", "config.yaml", "--replace-workflow-config", "--cores", "2"]


@pytest.fixture(scope="session")
def dot_test_run():
    """The shipped small test configuration (.test/) run once per session, as a user would:
    (its folder, the call's console output). Tests read it; one that changes anything works on
    a copy (copy_results)."""

    def build(work):
        for name in ("config.yaml", "mnist-small.npz"):
            shutil.copy(REPO / ".test" / name, work / name)
        result = snakemake(work, None, *DOT_TEST)
        (work / "console.txt").write_text(result.stdout + result.stderr)

    work = built_once("dot-test", build)
    return work, (work / "console.txt").read_text()


def copy_results(source: Path, target: Path) -> Path:
    """A copy of a workflow folder that Snakemake sees as up to date (times kept)."""
    shutil.copytree(source, target, symlinks=True)
    return target


# Written by tests/test_slurm.py when it starts the local SLURM.
SLURM_STARTED = "slurm-started"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Files with tests alone, then those with the most end-to-end tests, first (pytest-xdist
    hands out whole files, --dist loadfile, so that each file's module fixtures are built
    once), so that the short ones fill the workers' last minutes. Once SLURM's client is
    installed and its controller stopped, every snakemake start waits about 10 s (the SLURM
    executor plugin runs `scontrol show config` when it is imported): where it is installed,
    the controller runs from the session's start to its end (pytest_sessionstart)."""
    weight = {}  # a test alone holds up both workers: those files start first
    for item in items:
        cost = (item.get_closest_marker("slow") is not None) + 10 * (
            item.get_closest_marker("alone") is not None
        )
        weight[item.path] = weight.get(item.path, 0) + cost
    items.sort(key=lambda item: -weight[item.path])  # the same order on every worker


def pytest_sessionstart(session):
    """Where the local SLURM is installed (a machine that ran the suite before) but stopped, the
    main pytest process starts it for the session: otherwise every snakemake start waits about
    9 s until the SLURM test starts it (the SLURM executor plugin, loaded by every snakemake,
    asks `scontrol show config` when it is imported, and that waits for a controller). Nothing
    is installed here; pytest_sessionfinish stops it again."""
    if hasattr(session.config, "workerinput") or os.geteuid() != 0:
        return
    if not (shutil.which("scontrol") and shutil.which("slurmctld")):
        return
    (session.config._tmp_path_factory.getbasetemp() / SLURM_STARTED).touch()
    subprocess.run(
        ["bash", str(REPO / "cluster/local-slurm.sh"), "start"], capture_output=True, timeout=300, check=False
    )


def pytest_sessionfinish(session):
    """The main pytest process (not an xdist worker) stops the local SLURM a test started."""
    if hasattr(session.config, "workerinput"):
        return
    if (session.config._tmp_path_factory.getbasetemp() / SLURM_STARTED).exists():
        subprocess.run(
            ["bash", str(REPO / "cluster/local-slurm.sh"), "stop"], capture_output=True, timeout=120
        )
