"""Compilation as a phase of its own: each backend's run compiled ahead (on stand-in data, then
restored) trains to the same numbers, bit for bit, as the run compiled inside its first epoch,
with Keras's default compiler and with jit_compile and mixed precision; nothing is compiled on
the train clock; the saved model loads with its whole optimizer; and a training process never
imports scikit-learn."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mnistbench.data import prepare
from mnistbench.training.compile_ahead import stand_in
from mnistbench.training.pipeline import TEST_BATCH_SIZE, Data

# The settings each backend trains, each compiled ahead and inside its first epoch: the
# lesson's model with the backend's default compiler, and a small model with jit_compile
# (XLA; torch.compile) in both mixed precisions. 300 images in batches of 32 end with one of 12.
CASES = [
    {"model": "cnn", "batch_size": 32, "epochs": 2},
    {"model": "mlp", "batch_size": 32, "epochs": 2, "jit_compile": True, "precision": "mixed_bfloat16"},
    {"model": "mlp", "batch_size": 32, "epochs": 2, "jit_compile": True, "precision": "mixed_float16"},
]


def cases(backend):
    """CASES as `backend` trains them. On PyTorch, mixed_float16 runs without torch.compile:
    there Keras's loss scaling (ops.cond, named afresh at each step) recompiles every step until
    torch.compile's recompile limit, ahead or not, and each such run costs half a minute."""
    if backend != "torch":
        return CASES
    return [
        {**case, "jit_compile": "auto"} if case.get("precision") == "mixed_float16" else case
        for case in CASES
    ]


# One process per backend (KERAS_BACKEND is fixed at import) trains every case both ways, one
# after the other, with Keras's, XLA's and torch.compile's caches cleared between runs so that
# each compiles afresh as a training job does; a scikit-learn on the path raises on import.
# It counts the compilations made during the run's own fit() (the train clock and the
# evaluations in it): JAX's XLA compilations, torch.compile's, TensorFlow's function traces.
# Then it loads the saved model.keras and compares its optimizer with the trained one.
TRAIN_CASES = """
import json, sys, warnings
import numpy as np
backend, data, root, cases = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
from mnistbench.training import runtime, train
from mnistbench.grid import Run
runtime.start_training_process(backend, 1, pin_cpus=False)
compilations = []

def count_compilations():
    if backend == "jax":
        import jax
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **_: compilations.append(event) if "backend_compile" in event else None)
    if backend == "torch":
        import torch
        torch._dynamo.callback_handler.register_start_callback(
            lambda args: compilations.append(args.compile_id))

def clear_caches():
    import keras
    keras.utils.clear_session()
    if backend == "jax":
        import jax
        jax.clear_caches()
    if backend == "torch":
        import torch
        torch._dynamo.reset()  # which forgets the callback too
        count_compilations()

count_compilations()

def traces(model):
    functions = [getattr(model, name, None) for name in ("train_function", "predict_function")]
    return sum(f.experimental_get_tracing_count()
               for f in functions if hasattr(f, "experimental_get_tracing_count"))

on_train_clock, trained = {}, {}
real_fit, real_train_run = train.fit, train.train_run

def fit(keras, model, run, data, epochs, callbacks=()):
    if not callbacks:  # the stand-in epoch
        return real_fit(keras, model, run, data, epochs, callbacks)
    before = (len(compilations), traces(model))
    real_fit(keras, model, run, data, epochs, callbacks)
    on_train_clock.update(compilations=len(compilations) - before[0], traces=traces(model) - before[1])

def train_run(*args):
    outcome = real_train_run(*args)
    trained["model"] = outcome.model
    return outcome

def start_keras(backend, threads, started=[]):  # a process sizes its thread pools once
    started[:] = started or [real_start_keras(backend, threads)]
    return started[0]

real_start_keras = train.start_keras
train.fit, train.train_run, train.start_keras = fit, train_run, start_keras
names = {"model": "model.keras", "history": "history.csv", "timings": "timings.csv",
         "predictions": "predictions.npz", "metrics": "metrics.json"}
results = []
for number, settings in enumerate(cases):
    for ahead in (True, False):
        folder = f"{root}/{number}-{'ahead' if ahead else 'inside'}"
        run = Run.of({**settings, "backend": backend})
        options = {"steps_per_execution": 0, "compile_ahead": ahead}
        outputs = {key: f"{folder}/{name}" for key, name in names.items()}
        metrics = train.run_and_record(run, "r", data, outputs, 1, options)
        import keras
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = keras.saving.load_model(f"{folder}/model.keras")
        saved, back = trained["model"].optimizer.variables, loaded.optimizer.variables
        metrics.update(
            folder=folder, compiled_on_train_clock=dict(on_train_clock),
            sklearn_loaded=sys.modules.get("sklearn") is not None,
            optimizer_variables=[len(saved), len(back)],
            optimizer_restored=len(saved) == len(back) and all(
                np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
                for a, b in zip(saved, back)),
            load_warnings=[str(w.message) for w in caught if "Skipping variable loading" in str(w.message)])
        results.append(metrics)
        clear_caches()
print(json.dumps(results))
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


def train_cases_in_a_process(backend, data, root, site):
    """Each case's metrics, compiled ahead then inside its first epoch, in that order."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-P", "-c", TRAIN_CASES, backend, data, str(root), json.dumps(cases(backend))],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return list(zip(results[::2], results[1::2], strict=True))


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_compiling_ahead_changes_no_number_and_takes_compilation_off_the_train_clock(
    tmp_path, data, broken_sklearn, backend
):
    results = train_cases_in_a_process(backend, data, tmp_path, broken_sklearn)
    for settings, (ahead, inside) in zip(cases(backend), results, strict=True):
        case = f"{backend} {settings}"
        for metrics in (ahead, inside):
            assert metrics["status"] == "ok", (case, metrics.get("error"))
            assert metrics["dtype_policy"] == settings.get("precision", "float32"), case
            assert not metrics["sklearn_loaded"], case
            # Saved with exactly the optimizer variables that a loaded model has, each loaded.
            assert not metrics["load_warnings"], (case, metrics["load_warnings"])
            assert metrics["optimizer_restored"], (case, metrics["optimizer_variables"])
        # Bit for bit: every epoch's loss and accuracy, every test probability.
        histories = [pd.read_csv(f"{metrics['folder']}/history.csv") for metrics in (ahead, inside)]
        for column in ("loss", "accuracy", "test_accuracy", "test_loss"):
            assert histories[0][column].tolist() == histories[1][column].tolist(), (case, column)
        with (
            np.load(f"{ahead['folder']}/predictions.npz") as a,
            np.load(f"{inside['folder']}/predictions.npz") as b,
        ):
            np.testing.assert_array_equal(a["probabilities"], b["probabilities"], err_msg=case)
        assert ahead["compile_measured"] == "ahead" and ahead["compile_in_first_epoch_s"] is None
        assert list(pd.read_csv(f"{ahead['folder']}/timings.csv")["phase"]).count("compile") == 1
        assert inside["compile_measured"].startswith("first epoch over the steady epoch")
        seconds = histories[1]["seconds"]
        assert inside["compile_in_first_epoch_s"] == pytest.approx(
            max(0.0, seconds[0] - float(np.median(seconds[1:]))), abs=1e-6
        ), case
        # Nothing compiled on the train clock (the last partial batch, the evaluations and, on
        # PyTorch, the steps that follow the first, with gradients, included), while the run
        # compiled inside its first epoch compiles there: so the count can see compilations.
        assert not any(ahead["compiled_on_train_clock"].values()), (case, ahead["compiled_on_train_clock"])
        if backend != "torch" or settings.get("jit_compile") is True:  # PyTorch compiles only with jit
            assert any(inside["compiled_on_train_clock"].values()), case


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
