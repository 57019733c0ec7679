"""One training run in-process with real Keras on small data: outcomes, statuses and files."""

import json

import numpy as np
import pandas as pd
import pytest

from mnistbench.data import prepare
from mnistbench.grid import Run
from mnistbench.stopwatch import PHASES, Stopwatch
from mnistbench.training import pipeline, run_outputs, runtime, train

RUN = Run(model="mlp", hidden_units=16, activation="relu", batch_size=32, epochs=2)
OPTIONS = {"steps_per_execution": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("prepared") / "mnist_scale.npz"
    prepare.prepare(arrays, "scale", path)
    return str(path)


def outputs(folder):
    names = {
        "model": "model.keras",
        "history": "history.csv",
        "timings": "timings.csv",
        "predictions": "predictions.npz",
        "metrics": "metrics.json",
    }
    return {key: str(folder / name) for key, name in names.items()}


def run(tmp_path, data, name, options=OPTIONS, **changes):
    folder = tmp_path / name
    runtime.configure_runtime("tensorflow", 1)
    metrics = train.run_and_record(
        Run.of({**RUN.settings(), **changes}), name, data, outputs(folder), 1, options
    )
    return metrics, folder


@pytest.mark.parametrize("model", ["softmax", "mlp", "cnn"])
def test_each_model_trains_and_writes_every_output(tmp_path, data, model):
    metrics, folder = run(tmp_path, data, model, model=model)
    assert metrics["status"] == "ok" and metrics["test_accuracy"] > 0.5
    assert json.loads((folder / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]
    assert list(pd.read_csv(folder / "timings.csv")["phase"]) == list(PHASES)
    assert len(pd.read_csv(folder / "history.csv")) == 2
    with np.load(folder / "predictions.npz") as predictions:
        assert predictions["probabilities"].shape == (100, 10)
    assert (folder / "model.keras").stat().st_size > 1000
    assert not list(folder.glob(".*.tmp*"))


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, data):
    first, a = run(tmp_path, data, "a")
    second, b = run(tmp_path, data, "b")
    third, _ = run(tmp_path, data, "c", seed=1)
    assert (first["test_accuracy"], first["test_loss"]) == (second["test_accuracy"], second["test_loss"])
    with np.load(a / "predictions.npz") as pa, np.load(b / "predictions.npz") as pb:
        np.testing.assert_array_equal(pa["probabilities"], pb["probabilities"])
    assert third["test_loss"] != first["test_loss"]


def test_fast_path_gives_the_same_result_as_plain_fit(tmp_path, data):
    fast, _ = run(tmp_path, data, "fast")
    plain, _ = run(tmp_path, data, "plain", options={"steps_per_execution": 1}, jit_compile=False)
    assert fast["steps_per_execution"] > 1 and plain["steps_per_execution"] == 1
    assert fast["test_accuracy"] == plain["test_accuracy"]
    assert fast["test_loss"] == pytest.approx(plain["test_loss"], rel=1e-5)


def test_our_tensorflow_batches_are_the_ones_keras_makes(data):
    """Same batches in the same order as Keras's own array pipeline: the same loss every epoch
    (300 images at batch 32: a short last batch too); each epoch sees every image once; the
    same test-set predictions."""
    runtime.configure_runtime("tensorflow", 1)
    keras = runtime.start_keras("tensorflow", 1)
    arrays = pipeline.load_data(data)
    inputs = {
        "ours": lambda: {"x": pipeline.shuffled_batches(arrays, RUN.batch_size), "shuffle": False},
        "keras": lambda: {
            "x": arrays.x_train,
            "y": arrays.y_train,
            "batch_size": RUN.batch_size,
            "shuffle": True,
        },
    }
    losses = {}
    for which, make_inputs in inputs.items():
        runtime.seed_everything(keras, 0)
        model = train.build_and_compile(RUN, arrays, {"steps_per_execution": 4, "jit_compile": False})
        losses[which] = model.fit(**make_inputs(), epochs=3, verbose=0).history["loss"]
    assert losses["ours"] == losses["keras"]
    ours = pipeline.predict_test_set(keras, model, arrays).probabilities
    np.testing.assert_array_equal(
        ours, model.predict(arrays.x_test, batch_size=pipeline.TEST_BATCH_SIZE, verbose=0)
    )

    dataset = pipeline.shuffled_batches(arrays, RUN.batch_size)
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in dataset])
    assert not np.array_equal(labels, arrays.y_train)  # shuffled
    np.testing.assert_array_equal(np.sort(labels), np.sort(arrays.y_train))


def test_exploding_learning_rate_is_recorded_as_diverged(tmp_path, data):
    metrics, folder = run(
        tmp_path,
        data,
        "diverged",
        model="mlp",
        optimizer="sgd",
        learning_rate=1e10,
        epochs=3,
        normalize="none",
    )
    assert metrics["status"] == "diverged"
    assert metrics["epochs_completed"] < 3 or not np.isfinite(metrics["test_loss"])


def test_a_run_that_raises_is_recorded_as_failed(tmp_path, data):
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(open(data, "rb").read()[:20000])
    metrics, folder = run(tmp_path, str(damaged), "doomed")
    assert metrics["status"] == "failed" and "unreadable prepared data" in metrics["error"]
    assert json.loads((folder / "metrics.json").read_text())["status"] == "failed"
    assert metrics["epochs_completed"] == 0 and "test_accuracy" not in metrics


@pytest.mark.parametrize(
    "batch_size, epochs, spe, jit",
    [(4, 1, 256, False), (128, 1, 256, False), (60000, 5, 1, False), (4, 3, 256, False)],
)
def test_fast_path_choice(batch_size, epochs, spe, jit):
    chosen = train.choose_fast_path(Run(batch_size=batch_size, epochs=epochs), 60000, 0, "auto")
    assert chosen == {"steps_per_execution": spe, "jit_compile": jit}


# On the small data, softmax with sgd at this rate climbs epoch by epoch: test accuracy
# 0.19, 0.52, 0.77, 0.94, 1.0 (seeded, so the same every time).
SLOW_LEARNER = {"model": "softmax", "optimizer": "sgd", "learning_rate": 0.003}


def test_every_epoch_is_evaluated_off_the_train_phase_and_the_last_evaluation_is_the_test(
    tmp_path, data, monkeypatch
):
    timed = []  # every phase as the stopwatch records it: the train phase as timed around fit() too
    record = Stopwatch.record

    def record_and_note(watch, phase, seconds, started=None):
        timed.append((phase, seconds))
        record(watch, phase, seconds, started)

    monkeypatch.setattr(Stopwatch, "record", record_and_note)
    metrics, folder = run(tmp_path, data, "every", epochs=3, **SLOW_LEARNER)
    history = pd.read_csv(folder / "history.csv")
    assert list(history.columns) == run_outputs.HISTORY_COLUMNS
    assert history["test_accuracy"].notna().all() and history["test_accuracy"].is_monotonic_increasing
    assert history["test_accuracy"].iloc[0] < history["test_accuracy"].iloc[-1]
    evals = history["eval_seconds"]
    timings = metrics["timings"]
    assert timings["test"] == evals.iloc[-1] and timings["eval"] == pytest.approx(evals.iloc[:-1].sum())
    assert list(history["wall_clock"] - history["train_clock"]) == pytest.approx(list(evals.cumsum()))
    # The train phase lost its evaluations, all of them and only them: the phase as timed around
    # fit() (which held every epoch and every evaluation) less the evaluations' own seconds. No
    # bound on how long fit() takes beyond its epochs: that depends on the machine.
    whole_phase = next(seconds for phase, seconds in timed if phase == "train")
    assert history["wall_clock"].iloc[-1] <= whole_phase
    assert timings["train"] == pytest.approx(whole_phase - evals.sum())
    assert history["train_clock"].iloc[-1] <= timings["train"]
    assert metrics["test_accuracy"] == history["test_accuracy"].iloc[-1]
    with np.load(folder / "predictions.npz") as predictions:
        assert np.mean(predictions["y_pred"] == predictions["y_true"]) == metrics["test_accuracy"]
    assert metrics["eval_every_epoch"] and metrics["reached_target"] is None
    epochs = metrics["timeline"]["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["start"] < e["stop"] <= e["eval_start"] < e["eval_stop"] for e in epochs)


def test_a_target_stops_training_at_the_first_epoch_that_reaches_it(tmp_path, data):
    metrics, folder = run(tmp_path, data, "target", epochs=6, target_accuracy=0.75, **SLOW_LEARNER)
    accuracies = list(pd.read_csv(folder / "history.csv")["test_accuracy"])
    assert metrics["status"] == "ok" and metrics["reached_target"] is True
    assert metrics["epochs_completed"] == 3 and accuracies[-1] >= 0.75 > max(accuracies[:-1])
    assert metrics["timeline"]["status"] == "success"


def test_a_target_never_reached_trains_every_epoch_and_is_still_ok(tmp_path, data):
    metrics, _ = run(tmp_path, data, "missed", epochs=2, target_accuracy=1.0, **SLOW_LEARNER)
    assert metrics["status"] == "ok" and metrics["reached_target"] is False
    assert metrics["epochs_completed"] == 2 and metrics["timeline"]["status"] == "aborted"


def test_without_evaluation_every_epoch_only_the_last_epoch_is_evaluated(tmp_path, data):
    options = {**OPTIONS, "eval_every_epoch": False}
    metrics, folder = run(tmp_path, data, "speed", options=options, epochs=3, **SLOW_LEARNER)
    history = pd.read_csv(folder / "history.csv")
    assert history["test_accuracy"].isna().tolist() == [True, True, False]
    assert metrics["timings"]["eval"] == 0 and history["eval_seconds"].iloc[-1] <= metrics["timings"]["test"]
    assert metrics["test_accuracy"] == history["test_accuracy"].iloc[-1]
