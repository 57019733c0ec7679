"""A training job's supervisor and its trainer, as real processes hit by real signals."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from mnistbench.data import prepare
from mnistbench.grid import Run
from mnistbench.training import supervise


@pytest.fixture
def job(tmp_path, arrays):
    """A supervisor started as the workflow starts one, in a working folder that holds a
    random.py which would leave a mark if a training process imported it."""
    data = tmp_path / "mnist_scale.npz"
    prepare.prepare(arrays, "scale", data)
    (tmp_path / "random.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\nfrom random import *\n"
    )
    outputs = {name: str(tmp_path / f"out.{name}") for name in ("model", "history", "timings", "predictions")}
    outputs["metrics"] = str(tmp_path / "metrics.json")
    spec = {
        "run": Run(model="softmax", batch_size=8, epochs=400).settings(),
        "name": "victim",
        "repeat": 1,
        "data": str(data),
        "outputs": outputs,
        "threads": 1,
        "options": {"steps_per_execution": 0, "jit_compile": "auto", "pin_cpus": False},
        "log": str(tmp_path / "train.log"),
        "framework_log": str(tmp_path / "framework.log"),
        "time_limit_s": 600,
    }
    start = (
        "import json, sys, mnistbench.training.supervise as s; s.train_supervised(json.loads(sys.argv[1]))"
    )
    # -P as Snakemake's script runner: the supervisor's own sys.path does not hold the folder.
    supervisor = subprocess.Popen([sys.executable, "-P", "-c", start, json.dumps(spec)], cwd=tmp_path)
    deadline = time.monotonic() + 300
    while "epoch 1:" not in _text(tmp_path / "train.log"):
        assert supervisor.poll() is None and time.monotonic() < deadline, _text(tmp_path / "framework.log")
        time.sleep(0.1)
    (trainer,) = psutil.Process(supervisor.pid).children()
    yield supervisor, trainer, tmp_path
    for process in (trainer, psutil.Process(supervisor.pid) if supervisor.poll() is None else None):
        if process is not None and process.is_running():
            process.kill()
    supervisor.wait()


def _text(path):
    return path.read_text() if path.exists() else ""


def test_the_trainer_dies_with_its_supervisor_and_never_imports_the_working_folder(job):
    supervisor, trainer, folder = job
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    gone, alive = psutil.wait_procs([trainer], timeout=60)
    assert not alive, "the trainer outlived its supervisor"
    assert not (folder / "metrics.json").exists()
    assert not (folder / "imported").exists(), "the training process imported random.py from its folder"


def test_a_real_time_signal_is_recorded_as_a_crash(job):
    supervisor, trainer, folder = job
    number = signal.SIGRTMIN + 6
    trainer.send_signal(number)
    assert supervisor.wait(timeout=120) == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "crashed"
    assert f"killed by signal {number} (SIGRTMIN+6)" in metrics["error"]
    assert metrics["time_limit_s"] == 600
    assert "recorded as crashed" in (folder / "train.log").read_text()
    assert not (folder / "imported").exists()


@pytest.mark.parametrize(
    "number, name", [(9, "SIGKILL"), (15, "SIGTERM"), (signal.SIGRTMIN, "SIGRTMIN"), (99, "unnamed")]
)
def test_every_signal_number_gets_a_name(number, name):
    assert supervise.signal_name(number) == name


@pytest.mark.parametrize("minutes, seconds", [(1, 60), (3, 120), (30, 1740)])
def test_the_time_limit_is_a_minute_before_the_jobs_runtime(minutes, seconds):
    assert supervise.time_limit_s(minutes) == seconds


def test_no_supervisor_imports_a_framework():
    """So that the OOM killer, which picks the largest process, picks the trainer."""
    code = (
        "import sys, mnistbench.training.supervise; "
        "print(sorted({'tensorflow', 'jax', 'torch'} & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert loaded.stdout.strip() == "[]", loaded.stderr
