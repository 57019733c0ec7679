"""The data a run trains on and how it reaches the model: the prepared arrays, the training
batches (per backend), and the test set's predictions with what they score."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mnistbench.data.dataset import ARRAYS, class_count, image_shape
from mnistbench.data.prepare import read_stored_members, stored_class_count
from mnistbench.grid import Run

TEST_BATCH_SIZE = 1024  # predicting: large batches, few calls


@dataclass
class Data:
    """The prepared arrays, the (shift, scale) that the model's first layer applies, and the
    class count that sizes its output (None: counted from the labels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shift: float
    scale: float
    n_classes: int | None = None

    def __post_init__(self):
        if self.n_classes is None:
            self.n_classes = class_count(self.y_train, self.y_test)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image; 1 channel for grayscale (n, h, w) arrays."""
        return image_shape(self.x_train)


@dataclass
class Tested:
    """The test phase's predictions and what they score."""

    y_true: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    accuracy: float
    loss: float


def load_data(path) -> Data:
    """A prepared file (prepare.prepare) as Data."""
    stored = read_stored_members(path)
    return Data(
        **{name: stored[name] for name in ARRAYS},
        shift=float(stored["shift"]),
        scale=float(stored["scale"]),
        n_classes=stored_class_count(stored),
    )


def shuffled_batches(data: Data, batch_size: int):
    """The batches Keras's own array pipeline makes on TensorFlow, in the same order, made in the
    training thread (`untuned`).

    Same permutation as Keras (`tf.random.shuffle` of all indices; with the seed set, Keras on
    TensorFlow replays that one order every epoch, and so does this), hence the same losses:
    tested.
    """
    import tensorflow as tf

    n = len(data.x_train)
    full = n // batch_size * batch_size
    x, y = tf.constant(data.x_train), tf.constant(data.y_train)

    def one_epoch_of_indices(_):
        order = tf.random.shuffle(tf.range(n, dtype=tf.int64))
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full], [-1, batch_size]))
        if full < n:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full:]))
        return batches

    dataset = tf.data.Dataset.range(1).flat_map(one_epoch_of_indices)
    dataset = dataset.map(lambda indices: (tf.gather(x, indices), tf.gather(y, indices)))
    return untuned(dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(n / batch_size))))


def untuned(dataset):
    """A tf.data pipeline without autotuning. Keras's own pipelines for arrays are tuned by a
    background thread that competes with the training step on a pinned CPU, and whose end each
    fit() and predict() waits for: 5 s at random at the end of the lesson's fit (TensorFlow
    2.21; docs/measurements.md)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options)


def fit(keras, model, run: Run, data: Data, epochs: int, callbacks=()) -> None:
    """Train; in a run, a callback of EpochLog records each epoch, evaluates, and stops early
    (target, NaN loss)."""
    if keras.backend.backend() == "tensorflow":
        inputs = {"x": shuffled_batches(data, run.batch_size), "shuffle": False}  # shuffled already
    else:
        inputs = {"x": data.x_train, "y": data.y_train, "batch_size": run.batch_size, "shuffle": True}
    model.fit(**inputs, epochs=epochs, verbose=0, callbacks=list(callbacks))


def predict_test_set(keras, model, data: Data) -> Tested:
    """Predict the test set once; accuracy and loss come from those predictions."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        inputs = {"x": untuned(tf.data.Dataset.from_tensor_slices(data.x_test).batch(TEST_BATCH_SIZE))}
    else:
        inputs = {"x": data.x_test, "batch_size": TEST_BATCH_SIZE}
    # One batch per call: the test set is a few large batches, so fusing steps saves nothing,
    # and the compiled prediction then has two shapes only (a full batch and the last one),
    # which compile_ahead compiles on two stand-in batches instead of a whole stand-in test set.
    fused, model.steps_per_execution = model.steps_per_execution, 1
    try:
        probabilities = np.asarray(model.predict(**inputs, verbose=0), dtype=np.float32)
    finally:
        model.steps_per_execution = fused
    predicted = probabilities.argmax(axis=1).astype(np.uint8)
    picked = probabilities[np.arange(len(data.y_test)), data.y_test]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    return Tested(data.y_test, probabilities, predicted, float(np.mean(predicted == data.y_test)), loss)
