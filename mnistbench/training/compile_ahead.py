"""Compilation as a phase of its own, before the train clock starts.

Keras compiles a model's training and prediction functions on their first call: XLA on JAX
(and on TensorFlow with jit_compile), graph tracing on TensorFlow, torch.compile on PyTorch.
Left alone, that lands in the first epoch, the train phase and every time to a target. MLPerf
starts its clock after initialization, which compilation belongs to; so here each run calls
those functions once on stand-in data (never the training set, MLPerf's rule for its
initialization) with every batch shape that an epoch and an evaluation use, then puts back the
weights, the optimizer's state and every random generator, so that the run's losses and
accuracies are those of a run without this step (tested bit for bit on each backend).

torch.compile guards each compiled step on more than shapes: on whether the weights' gradients
exist (`param.grad is None`), which is so at a run's first step only. With torch.compile the
stand-in epoch runs twice, so that each batch shape is compiled both with gradients and without, and the
gradients are cleared again on restore, as a fresh run starts: the train clock then compiles
nothing (tested by counting compilations).
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace

import numpy as np

from mnistbench.training.pipeline import TEST_BATCH_SIZE


def every_batch_shape(n: int, batch_size: int) -> int:
    """How many images make one batch of each shape that `n` images in batches of `batch_size`
    have: a full batch, then the short last one where there is one."""
    return min(n, batch_size) + (n % batch_size if n > batch_size else 0)


def stand_in(data, batch_size: int):
    """Data shaped like `data`, drawn from a generator of its own (no global state used), with
    one batch of each shape that an epoch (at `batch_size`) and an evaluation of the test set (at
    TEST_BATCH_SIZE, one batch per call) have."""
    rng = np.random.default_rng(0)

    def images(count):
        return rng.integers(0, 256, size=(count, *data.x_train.shape[1:]), dtype=data.x_train.dtype)

    def labels(count):
        return (np.arange(count) % data.n_classes).astype(data.y_train.dtype)  # every class, none more

    n_train = every_batch_shape(len(data.x_train), batch_size)
    n_test = every_batch_shape(len(data.x_test), TEST_BATCH_SIZE)
    return replace(
        data, x_train=images(n_train), y_train=labels(n_train), x_test=images(n_test), y_test=labels(n_test)
    )


class Snapshot:
    """The state a run starts training from: every model and optimizer variable (seed generator
    states included) and the process's random generators."""

    def __init__(self, keras, model):
        # Built now (where the model's build has not), its variables are the zeros (and step 0)
        # that a fresh run's first step would create, and they are restored as such. Never
        # built twice: LossScaleOptimizer (mixed_float16) would add a second step counter and
        # loss scale, and model.keras would then hold more optimizer variables than a loaded
        # model has, so that Keras skips loading them all.
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        self.model = model
        self.variables = [*model.variables, *model.optimizer.variables]
        self.values = [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in self.variables]
        self.python = random.getstate()
        self.numpy = np.random.get_state()
        self.keras_seed = _keras_global_seed_state(keras)
        torch = sys.modules.get("torch")
        self.torch = torch.get_rng_state() if torch is not None else None

    def restore(self, keras) -> None:
        for variable, value in zip(self.variables, self.values, strict=True):
            variable.assign(value)
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        _set_keras_global_seed_state(keras, self.keras_seed)
        if self.torch is not None:
            sys.modules["torch"].set_rng_state(self.torch)
            # No gradients, as at a fresh run's first step (torch.compile guards on it).
            self.model.zero_grad(set_to_none=True)


def _keras_global_seed_state(keras):
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    if generator is None:
        return None
    return np.array(keras.ops.convert_to_numpy(generator.state.value), copy=True)


def _set_keras_global_seed_state(keras, state) -> None:
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    if state is None:
        # Created by the warm-up itself: a run without it would create it later, afresh.
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    elif generator is not None:
        generator.state.assign(state)


def compile_ahead(keras, model, run, data, fit_one_epoch, predict) -> None:
    """Compile `model`'s training and prediction functions for every batch shape of `run`'s
    epochs and evaluations, then restore the state training starts from.

    fit_one_epoch(stand_in_data) and predict(stand_in_data) are the run's own training and
    evaluation calls (same pipeline, same functions), so that what is compiled is what runs.
    """
    snapshot = Snapshot(keras, model)
    fake = stand_in(data, run.batch_size)
    fit_one_epoch(fake)
    if keras.backend.backend() == "torch" and model.jit_compile:
        # The first epoch's first step had no gradients, its others had: once more, so that
        # every batch shape is compiled with gradients too, as the run's later steps have them.
        fit_one_epoch(fake)
    predict(fake)
    snapshot.restore(keras)
