"""Expanding the config's experiments into unique, named runs."""

import re

import pytest

from mnistbench import grid

DEFAULTS = {
    "dataset": "mnist",
    "normalize": "scale",
    "model": "mlp",
    "optimizer": "adam",
    "batch_size": 32,
    "epochs": 1,
    "hidden_units": 64,
    "activation": "linear",
    "learning_rate": None,
    "seed": 0,
    "backend": "tensorflow",
}


def expand(experiments):
    return grid.expand({"defaults": DEFAULTS, "experiments": experiments})


def test_mapping_of_lists_is_a_cartesian_product():
    runs, _ = expand({"sweep": {"optimizer": ["sgd", "adam"], "batch_size": [4, 32, 128]}})
    assert len(runs) == 6
    assert {(r["optimizer"], r["batch_size"]) for r in runs.values()} == {
        (o, b) for o in ("sgd", "adam") for b in (4, 32, 128)
    }


def test_same_settings_in_two_experiments_train_once():
    runs, experiments = expand({"a": [{"batch_size": 4}], "b": {"batch_size": [4, 8]}})
    assert len(runs) == 2
    shared = next(name for name, params in runs.items() if params["batch_size"] == 4)
    assert experiments[shared] == ["a", "b"]


def test_settings_that_do_not_apply_make_no_new_run():
    runs, _ = expand(
        {"s": {"model": ["softmax", "cnn"], "hidden_units": [16, 32], "activation": ["relu", "tanh"]}}
    )
    assert len(runs) == 2
    assert all(params["hidden_units"] is None for params in runs.values())


def test_names_are_readable_stable_and_path_safe():
    runs, _ = expand({"x": [{"learning_rate": 0.001, "hidden_units": 128, "activation": "relu", "seed": 3}]})
    (name,) = runs
    assert name == "mnist_mlp128-relu_adam-lr0.001_b32_e1_scale_s3_tf"
    runs_again, _ = expand(
        {"y": [{"seed": 3, "activation": "relu", "hidden_units": 128, "learning_rate": 1e-3}]}
    )
    assert list(runs_again) == [name]
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)


def test_defaults_fill_what_an_experiment_leaves_out():
    runs, _ = expand({"x": [{}]})
    (params,) = runs.values()
    assert params == DEFAULTS


@pytest.mark.parametrize(
    "learning_rate, tag", [(None, "lrdefault"), (0.1, "lr0.1"), (1e-05, "lr1e-05"), (1, "lr1.0")]
)
def test_learning_rate_in_names(learning_rate, tag):
    runs, _ = expand({"x": [{"learning_rate": learning_rate}]})
    assert tag in next(iter(runs))


def test_expected_train_time_orders_the_shipped_runs_as_measured():
    # Measured here on one core: cnn 3 epochs 63 s > blog 20 epochs 10-12 s > lesson 6 s >
    # the same on JAX 2.5 s > mlp batch 128 1.6 s.
    runs = [
        {**DEFAULTS, "model": "cnn", "batch_size": 128, "epochs": 3},
        {**DEFAULTS, "model": "softmax", "optimizer": "sgd", "batch_size": 32, "epochs": 20},
        {**DEFAULTS, "batch_size": 4},
        {**DEFAULTS, "batch_size": 4, "backend": "jax"},
        {**DEFAULTS, "batch_size": 128},
    ]
    seconds = [grid.expected_train_seconds(run) for run in runs]
    assert seconds == sorted(seconds, reverse=True) and len(set(seconds)) == len(seconds)
