"""The grid of runs: config defaults and experiments expanded into unique, named runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import jsonschema

# The order of the settings in a run's name and in tables.
PARAMETERS = (
    "dataset",
    "model",
    "hidden_units",
    "activation",
    "optimizer",
    "learning_rate",
    "batch_size",
    "epochs",
    "normalize",
    "seed",
    "backend",
)

# Settings that only the mlp reads: for other models they are dropped, so they make no new run.
MLP_ONLY = ("hidden_units", "activation")

BACKEND_TAGS = {"tensorflow": "tf", "jax": "jax"}


class ConfigError(ValueError):
    """A config mistake, phrased as one line that names the key."""


def describe_validation_error(error: jsonschema.ValidationError) -> str:
    """One line naming the config key at fault and what is allowed there."""
    error = jsonschema.exceptions.best_match([error])
    key = ""
    for part in error.absolute_path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    message = error.message
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        message = f"{error.instance!r} is not allowed; choose one of: {allowed}"
    elif error.validator == "type":
        message = f"{error.instance!r} has the wrong type; expected {error.validator_value}"
    return f"config key '{key or '<top level>'}': {message}"


def check_paths(config: dict) -> None:
    """A local dataset path that does not exist is a config mistake, caught before any job."""
    for dataset, data in config["data"].items():
        path = data.get("local_path")
        if path and not Path(path).exists():
            raise ConfigError(f"config key 'data.{dataset}.local_path': {path} does not exist")


def _experiment_runs(experiment) -> list[dict]:
    if isinstance(experiment, list):
        return [dict(run) for run in experiment]
    keys = list(experiment)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*experiment.values())]


def normalize_run(params: dict) -> dict:
    """Drop the settings that do not apply to the run's model."""
    params = {key: params[key] for key in PARAMETERS}
    if params["model"] != "mlp":
        for key in MLP_ONLY:
            params[key] = None
    return params


def run_name(params: dict) -> str:
    """A readable, stable folder name made only of the run's settings."""
    model = params["model"]
    if model == "mlp":
        model = f"mlp{params['hidden_units']}-{params['activation']}"
    learning_rate = "default" if params["learning_rate"] is None else repr(float(params["learning_rate"]))
    return "_".join(
        [
            params["dataset"],
            model,
            f"{params['optimizer']}-lr{learning_rate}",
            f"b{params['batch_size']}",
            f"e{params['epochs']}",
            params["normalize"],
            f"s{params['seed']}",
            BACKEND_TAGS[params["backend"]],
        ]
    )


def expand(config: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Return {run name: settings} and {run name: the experiments it belongs to}.

    The config has already been validated against the schema (defaults filled in).
    """
    runs: dict[str, dict] = {}
    memberships: dict[str, list[str]] = {}
    for experiment, spec in config["experiments"].items():
        for partial in _experiment_runs(spec):
            params = normalize_run({**config["defaults"], **partial})
            name = run_name(params)
            runs[name] = params
            if experiment not in memberships.setdefault(name, []):
                memberships[name].append(experiment)
    return runs, memberships


def datasets_used(runs: dict[str, dict]) -> list[str]:
    return sorted({params["dataset"] for params in runs.values()})


# Seconds per training step and per image on one core (TensorFlow, measured here); JAX's
# steps cost about half. Only the order of runs matters (see expected_train_seconds).
SECONDS_PER_STEP = 3.5e-4
SECONDS_PER_IMAGE = {"softmax": 5e-6, "mlp": 10e-6, "cnn": 160e-6}
TRAIN_IMAGES = 60_000  # MNIST and Fashion-MNIST alike


def expected_train_seconds(params: dict) -> float:
    """A rough estimate of a run's train phase, so that the longest runs start first.

    Started last, the grid's longest run would leave the other cores idle till it ends.
    """
    steps = -(-TRAIN_IMAGES // params["batch_size"])
    per_step = SECONDS_PER_STEP * (0.5 if params["backend"] == "jax" else 1.0)
    epoch = steps * per_step + TRAIN_IMAGES * SECONDS_PER_IMAGE[params["model"]]
    return params["epochs"] * epoch
