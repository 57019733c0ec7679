"""Compilation as a phase of its own: each backend's run compiled ahead (on stand-in data, then
restored) trains to the same numbers, bit for bit, as the run compiled inside its first epoch;
nothing is compiled on the train clock; and a training process never imports scikit-learn."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mnistbench import prepare
from mnistbench.compile_ahead import stand_in
from mnistbench.pipeline import TEST_BATCH_SIZE, Data

# Run in a process of its own per backend, as a training job is, with a scikit-learn on the
# path that raises on import. On JAX it counts XLA compilations and when they happened.
TRAIN_ONE = """
import json, sys, time
backend, ahead, data, folder = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
from mnistbench import runtime, train
from mnistbench.grid import Run
runtime.start_training_process(backend, 1, pin_cpus=False)
compiled_at = []
if backend == "jax":
    import jax
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: compiled_at.append(time.time()) if "backend_compile" in event else None)
run = Run.of({"model": "cnn", "batch_size": 32, "epochs": 2, "backend": backend})
names = {"model": "model.keras", "history": "history.csv", "timings": "timings.csv",
         "predictions": "predictions.npz", "metrics": "metrics.json"}
outputs = {key: f"{folder}/{name}" for key, name in names.items()}
options = {"steps_per_execution": 0, "compile_ahead": ahead}
metrics = train.run_and_record(run, "r", data, outputs, 1, options)
metrics["compiled_at"] = compiled_at
metrics["sklearn_loaded"] = sys.modules.get("sklearn") is not None
print(json.dumps(metrics))
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("prepared") / "mnist_scale.npz"
    prepare.prepare(arrays, "scale", path)  # 300 images: batches of 32 end with one of 12
    return str(path)


@pytest.fixture(scope="module")
def broken_sklearn(tmp_path_factory):
    """A scikit-learn whose import fails as the GPU machine's did (not with ImportError)."""
    root = tmp_path_factory.mktemp("site")
    (root / "sklearn").mkdir()
    (root / "sklearn" / "__init__.py").write_text(
        "raise AttributeError(\"'NoneType' object has no attribute 'Tensor'\")\n"
    )
    return root


def train_in_a_process(backend, ahead, data, folder, site):
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-P", "-c", TRAIN_ONE, backend, "1" if ahead else "0", data, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_compiling_ahead_changes_no_number_and_takes_compilation_off_the_train_clock(
    tmp_path, data, broken_sklearn, backend
):
    ahead = train_in_a_process(backend, True, data, tmp_path / "ahead", broken_sklearn)
    inside = train_in_a_process(backend, False, data, tmp_path / "inside", broken_sklearn)
    for metrics in (ahead, inside):
        assert metrics["status"] == "ok", metrics.get("error")
        assert not metrics["sklearn_loaded"]
    # Bit for bit: every epoch's loss and accuracy, every test probability.
    histories = [pd.read_csv(tmp_path / name / "history.csv") for name in ("ahead", "inside")]
    for column in ("loss", "accuracy", "test_accuracy", "test_loss"):
        assert histories[0][column].tolist() == histories[1][column].tolist()
    with np.load(tmp_path / "ahead/predictions.npz") as a, np.load(tmp_path / "inside/predictions.npz") as b:
        np.testing.assert_array_equal(a["probabilities"], b["probabilities"])
    assert ahead["compile_measured"] == "ahead" and ahead["compile_in_first_epoch_s"] is None
    assert inside["compile_measured"].startswith("first epoch over the steady epoch")
    assert inside["compile_in_first_epoch_s"] >= 0
    assert list(pd.read_csv(tmp_path / "ahead/timings.csv")["phase"]).count("compile") == 1
    if backend == "jax":
        # Every shape compiled before the train clock (the last partial batch included), while
        # the run compiled inside its first epoch compiles on it.
        def compiled_during_train(metrics):
            start = metrics["phase_started_unix"]["train"]
            return [t for t in metrics["compiled_at"] if start <= t <= start + metrics["timings"]["train"]]

        assert ahead["compiled_at"] and not compiled_during_train(ahead)
        assert compiled_during_train(inside)


def test_stand_in_data_has_every_batch_shape_and_none_of_the_training_images(arrays):
    data = Data(**arrays, shift=0.0, scale=255.0)
    fake = stand_in(data, 32)
    assert len(fake.x_train) == 32 + 300 % 32  # a full batch and the short last one
    assert len(fake.x_test) == 100 and fake.x_train.dtype == data.x_train.dtype  # one test batch
    assert not any((image == data.x_train).all(axis=(1, 2)).any() for image in fake.x_train)
    assert len(stand_in(data, 512).x_train) == 300  # one batch, smaller than batch_size
    assert len(stand_in(data, 100).x_train) == 100  # no short last batch
    larger_test_set = Data(**{**arrays, "x_test": np.zeros((2500, 28, 28), np.uint8)}, shift=0.0, scale=255.0)
    assert len(stand_in(larger_test_set, 32).x_test) == TEST_BATCH_SIZE + 2500 % TEST_BATCH_SIZE
