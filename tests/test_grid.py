"""Expanding the config's experiments into unique, named runs; the Run type against the schema."""

import re

import pytest
import yaml
from conftest import REPO

from mnistbench import grid, networks
from mnistbench.grid import Run

DEFAULTS = {**Run().settings(), "repeats": 1}


def expand(experiments):
    jobs, experiments = grid.expand({"defaults": DEFAULTS, "experiments": experiments})
    return jobs, experiments


def test_the_run_type_matches_the_schema_settings_and_defaults():
    schema = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
    run_properties = set(schema["$defs"]["run"]["properties"]) - {"repeats"}
    assert run_properties == set(grid.CONFIG_SETTINGS)
    sweepable = set(schema["$defs"]["experiment"]["properties"]) - {"repeats"}
    assert sweepable == set(grid.CONFIG_SETTINGS)
    defaults = {
        name: spec["default"]
        for name, spec in schema["properties"]["defaults"]["properties"].items()
        if name != "repeats"
    }
    assert {**defaults, "network": None} == Run().settings()
    assert set(grid.BACKEND_TAGS) == set(schema["$defs"]["backend"]["enum"])
    assert set(grid.SECONDS_PER_IMAGE) == set(networks.SHIPPED_MODELS)


def test_mapping_of_lists_is_a_cartesian_product():
    runs, _ = expand({"sweep": {"optimizer": ["sgd", "adam"], "batch_size": [4, 32, 128]}})
    assert len(runs) == 6
    assert {(job.run.optimizer, job.run.batch_size) for job in runs.values()} == {
        (o, b) for o in ("sgd", "adam") for b in (4, 32, 128)
    }


def test_same_settings_in_two_experiments_train_once():
    runs, experiments = expand({"a": [{"batch_size": 4}], "b": {"batch_size": [4, 8]}})
    assert len(runs) == 2
    shared = next(name for name, job in runs.items() if job.run.batch_size == 4)
    assert experiments[shared] == ["a", "b"]


def test_settings_that_do_not_apply_make_no_new_run():
    runs, _ = expand(
        {"s": {"model": ["softmax", "cnn"], "hidden_units": [16, 32], "activation": ["relu", "tanh"]}}
    )
    assert len(runs) == 2
    assert all(job.run.hidden_units is None and job.run.activation is None for job in runs.values())


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
    (job,) = runs.values()
    assert job.run == Run() and job.repeat == 1


@pytest.mark.parametrize(
    "learning_rate, tag", [(None, "lrdefault"), (0.1, "lr0.1"), (1e-05, "lr1e-05"), (1, "lr1.0")]
)
def test_learning_rate_in_names(learning_rate, tag):
    runs, _ = expand({"x": [{"learning_rate": learning_rate}]})
    assert tag in next(iter(runs))


def test_an_integer_learning_rate_is_a_float_for_keras():
    runs, _ = expand({"x": [{"learning_rate": 1}]})
    (job,) = runs.values()
    assert isinstance(job.run.learning_rate, float) and job.run.learning_rate == 1.0


def test_repeats_are_jobs_of_the_same_run_and_the_first_keeps_its_name():
    single, _ = expand({"x": [{"batch_size": 4}]})
    repeated, experiments = expand({"x": [{"batch_size": 4, "repeats": 3}], "y": {"model": ["softmax"]}})
    (first,) = single
    assert set(repeated) == {
        first,
        f"{first}_r2",
        f"{first}_r3",
        "mnist_softmax_adam-lrdefault_b32_e1_scale_s0_tf",
    }
    assert {repeated[name].run for name in (first, f"{first}_r2", f"{first}_r3")} == {single[first].run}
    assert [repeated[name].repeat for name in (first, f"{first}_r2", f"{first}_r3")] == [1, 2, 3]
    assert experiments[f"{first}_r3"] == ["x"]


def test_repeats_in_a_mapping_apply_to_every_run_and_are_not_swept():
    runs, _ = expand({"sweep": {"batch_size": [4, 8], "repeats": 2}})
    assert len(runs) == 4 and {job.repeat for job in runs.values()} == {1, 2}


def test_the_most_repeats_asked_for_a_run_win():
    runs, _ = expand({"a": [{"repeats": 2}], "b": [{"repeats": 5}], "c": [{}]})
    assert len(runs) == 5


def test_expected_train_time_orders_the_shipped_runs_as_measured():
    # The order measured here (docs/measurements.md): the lesson on PyTorch > cnn 3 epochs > blog 20 epochs >
    # lesson > the same on JAX > mlp batch 128.
    runs = [
        Run(batch_size=4, backend="torch"),
        Run(model="cnn", batch_size=128, epochs=3),
        Run(model="softmax", optimizer="sgd", batch_size=32, epochs=20),
        Run(batch_size=4),
        Run(batch_size=4, backend="jax"),
        Run(batch_size=128),
    ]
    seconds = [run.expected_train_seconds() for run in runs]
    assert seconds == sorted(seconds, reverse=True) and len(set(seconds)) == len(seconds)


def test_hardware_settings_at_their_defaults_keep_every_name():
    lesson = Run.of({**DEFAULTS, "model": "mlp", "optimizer": "adam", "batch_size": 4, "epochs": 1})
    assert lesson.name == "mnist_mlp64-linear_adam-lrdefault_b4_e1_scale_s0_tf"


def test_every_hardware_setting_away_from_its_default_is_in_the_name():
    sweep = {
        "threads": [1, 4],
        "device": ["cpu", "gpu"],
        "precision": ["float32", "mixed_bfloat16", "mixed_float16"],
        "jit_compile": ["auto", True, False],
        "partition": [None, "batch"],
    }
    runs, _ = expand({"hw": sweep})
    assert len(runs) == 2 * 2 * 3 * 3 * 2  # all distinct names
    run = Run(threads=4, device="gpu", precision="mixed_float16", jit_compile=False, partition="batch")
    assert run.name.endswith("_tf_t4_gpu_fp16_noxla_p-batch")
    for name in runs:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name


def test_keys_moved_out_of_train_are_named_in_one_line():
    for old, new in grid.MOVED_TO_RUN.items():
        with pytest.raises(grid.ConfigError, match=rf"'train\.{old}' moved: it is the run setting '{new}'"):
            grid.check_moved_keys({"train": {old: 1}})
    grid.check_moved_keys({"train": {"isolate": True}})


@pytest.mark.parametrize(
    "arguments, looking",
    [
        (["-n"], True),
        (["-np", "--cores", "2"], True),
        (["--dry-run"], True),
        (["--summary"], True),
        (["--unlock"], True),
        (["--cores", "2", "results/report.html"], False),
        (["--set-resources", "train:runtime=3"], False),
    ],
)
def test_calls_that_only_look_are_told_apart(arguments, looking):
    assert grid.only_looking(arguments) is looking


def test_job_params_leave_out_hardware_settings_and_target_at_their_defaults():
    assert set(Run().params()) == set(grid.SETTINGS) - set(grid.ADDED_SETTINGS)
    assert Run(threads=2).params()["threads"] == 2
    assert Run(target_accuracy=0.97).params()["target_accuracy"] == 0.97
    assert Run(**Run(precision="mixed_float16").params()) == Run(precision="mixed_float16")


def test_a_target_is_named_only_when_set_and_yamls_ints_become_floats():
    lesson = Run(batch_size=4)
    assert lesson.name == "mnist_mlp64-linear_adam-lrdefault_b4_e1_scale_s0_tf"
    assert Run.of({"batch_size": 4, "target_accuracy": 1}).target_accuracy == 1.0
    assert Run(batch_size=4, target_accuracy=0.97).name == lesson.name + "_to0.97"


def test_settings_that_read_the_same_in_a_run_name_are_refused_naming_both_values():
    """The finding: target_accuracy [0.97, 0.9700001] made one job, and one run silently vanished."""
    with pytest.raises(grid.ConfigError) as raised:
        expand({"targets": {"target_accuracy": [0.97, 0.9700001], "model": ["cnn"]}})
    assert str(raised.value).startswith(
        "config key 'experiments': target_accuracy 0.97 and 0.9700001 give the same run name "
    )
    assert "_to0.97" in str(raised.value) and "\n" not in str(raised.value)
    jobs, _ = expand({"targets": {"target_accuracy": [0.97, 0.975]}})  # 6 digits apart: two runs
    assert len(jobs) == 2


def test_targets_that_read_the_same_in_column_names_are_refused():
    """The finding: targets [0.9, 0.9000001] wrote the column time_to_0.9 twice."""
    with pytest.raises(grid.ConfigError, match=r"^config key 'targets': 0\.9 and 0\.9000001 both read 0\.9 "):
        grid.check_target_names({"targets": [0.9, 0.95, 0.9000001]})
    grid.check_target_names({"targets": [0.9, 0.95, 0.99, 0.995]})
