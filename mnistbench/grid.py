"""The grid of runs: config defaults and experiments expanded into unique, named runs."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import jsonschema

from mnistbench.data.dataset import FULL_SIZES
from mnistbench.networks import SHIPPED_MODELS

BACKEND_TAGS = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}
PRECISION_TAGS = {"float32": "", "mixed_bfloat16": "bf16", "mixed_float16": "fp16"}
JIT_TAGS = {"auto": "", True: "xla", False: "noxla"}
# Keys of `train` that became run settings: a config that still uses one is told where it went.
MOVED_TO_RUN = {"threads": "threads", "gpus": "device", "jit_compile": "jit_compile"}
# Settings that only the mlp reads: for other models they are None, so they make no new run.
MLP_ONLY = ("hidden_units", "activation")

# Rough relative costs of a training step and of an image per model, for the order of runs
# only (see Run.expected_train_seconds), and each backend's per-step overhead relative to
# TensorFlow's.
SECONDS_PER_STEP = 3.5e-4
STEP_COST = {"tensorflow": 1.0, "jax": 0.5, "torch": 10.0}
SECONDS_PER_IMAGE = {"softmax": 5e-6, "mlp": 10e-6, "cnn": 160e-6}
# A network of the user's own: taken to cost what the cnn does, for the order of runs only.
SECONDS_PER_IMAGE_UNKNOWN = SECONDS_PER_IMAGE["cnn"]


@dataclass(frozen=True)
class Run:
    """One run's settings: the single list of them, their order in names and tables, and their
    defaults (tests/test_grid.py checks these against the config schema)."""

    dataset: str = "mnist"
    model: str = "mlp"
    hidden_units: int | None = 64
    activation: str | None = "linear"
    optimizer: str = "adam"
    learning_rate: float | None = None
    batch_size: int = 32
    epochs: int = 1
    # Stop at the end of the first epoch whose evaluation reaches this test accuracy (MLPerf's
    # run_stop); None trains every epoch. Named only when set.
    target_accuracy: float | None = None
    normalize: str = "scale"
    seed: int = 0
    backend: str = "tensorflow"
    # The hardware and runtime a run uses; at their defaults they add nothing to its name.
    threads: int = 1
    device: str = "cpu"
    precision: str = "float32"
    jit_compile: str | bool = "auto"
    partition: str | None = None
    # A network of the user's own (`models` in the config): the digest of its file, function
    # and params (mnistbench/networks.py), so that an edit retrains it and two definitions under
    # one name never count as one setting. Not in the name: the model's name says which.
    network: str | None = None

    @classmethod
    def of(cls, settings: dict) -> Run:
        """The run of these settings; those that do not apply to its model are dropped."""
        run = cls(**{name: settings[name] for name in SETTINGS if name in settings})
        for name in ("learning_rate", "target_accuracy"):  # YAML's 1 is an int: Keras wants floats
            if getattr(run, name) is not None:
                run = replace(run, **{name: float(getattr(run, name))})
        if run.model != "mlp":
            run = replace(run, **dict.fromkeys(MLP_ONLY))
        return run

    def settings(self) -> dict:
        return asdict(self)

    def params(self) -> dict:
        """The settings a training job is given: those added after results existed only away
        from their defaults, so that adding them changed no existing job's params (no retraining)."""
        defaults = Run()
        return {
            name: value
            for name, value in self.settings().items()
            if name not in ADDED_SETTINGS or value != getattr(defaults, name)
        }

    @property
    def name(self) -> str:
        """A readable, stable folder name made only of the run's settings."""
        model = self.model
        if model == "mlp":
            model = f"mlp{self.hidden_units}-{self.activation}"
        learning_rate = "default" if self.learning_rate is None else repr(float(self.learning_rate))
        return "_".join(
            [
                self.dataset,
                model,
                f"{self.optimizer}-lr{learning_rate}",
                f"b{self.batch_size}",
                f"e{self.epochs}",
                self.normalize,
                f"s{self.seed}",
                BACKEND_TAGS[self.backend],
                *added_tags(self.settings()),
            ]
        )

    def expected_train_seconds(self) -> float:
        """A rough estimate of the train phase, so that the longest runs start first.

        Started last, the grid's longest run would leave the other cores idle till it ends.
        """
        images = FULL_SIZES[0]
        steps = -(-images // self.batch_size)
        per_step = SECONDS_PER_STEP * STEP_COST[self.backend]
        per_image = SECONDS_PER_IMAGE.get(self.model, SECONDS_PER_IMAGE_UNKNOWN)
        return self.epochs * (steps * per_step + images * per_image)


SETTINGS = tuple(field.name for field in fields(Run))
# Settings the workflow works out rather than the config gives (the network's digest).
DERIVED_SETTINGS = ("network",)
CONFIG_SETTINGS = tuple(name for name in SETTINGS if name not in DERIVED_SETTINGS)


def added_tags(settings: dict) -> list[str]:
    """The tags of the settings added after results existed (hardware, target) away from their
    defaults, in run names and report labels alike: only those, so that adding these dimensions
    renamed no existing result.
    Takes values as a Run holds them or as a CSV gives them back (2.0, "True", NaN)."""

    def given(name):
        value = settings.get(name)
        return None if value is None or value != value or value == "" else value  # NaN != NaN

    threads, partition = given("threads"), given("partition")
    jit = {"True": True, "False": False}.get(str(given("jit_compile")), given("jit_compile") or "auto")
    tags = [f"t{int(threads)}" if threads is not None and int(threads) != 1 else ""]
    tags += ["gpu" if given("device") == "gpu" else "", PRECISION_TAGS.get(given("precision"), "")]
    tags += [JIT_TAGS.get(jit, ""), f"p-{partition}" if partition else ""]
    target = given("target_accuracy")
    tags += [f"to{target_label(target)}" if target is not None else ""]
    return [tag for tag in tags if tag]


def target_label(target: float) -> str:
    """0.97 -> "0.97": an accuracy target as run names (_to0.97) and columns (time_to_0.97) read it,
    to 6 significant digits; check_target_names refuses two that read the same."""
    return f"{float(target):g}"


HARDWARE_SETTINGS = ("threads", "device", "precision", "jit_compile", "partition")
ADDED_SETTINGS = (*HARDWARE_SETTINGS, "target_accuracy", "network")


@dataclass(frozen=True)
class Measurement:
    """One training job: a run's settings and which repeat of them this is (1, 2, ...)."""

    run: Run
    repeat: int = 1

    @property
    def name(self) -> str:
        """The run's name for its first repeat (so that adding repeats keeps it), then _r2, _r3..."""
        return self.run.name if self.repeat == 1 else f"{self.run.name}_r{self.repeat}"


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


def check_finite(config: dict) -> None:
    """Numbers must be finite: JSON Schema lets NaN through every bound."""
    _check_finite(config, "")


# Snakemake options of calls that only look (dry run, listings, graphs, reports): such a call
# must change no result. Read from the command line, since the Snakefile is parsed before
# Snakemake says which mode it runs in.
LOOKING_OPTIONS = {
    "--dry-run",
    "--dryrun",
    "--list",
    "--summary",
    "--detailed-summary",
    "--dag",
    "--rulegraph",
}
LOOKING_OPTIONS |= {"--filegraph", "--report", "--lint", "--list-changes", "--unlock", "--d3dag", "--lc"}


def only_looking(arguments: list[str]) -> bool:
    """Whether a snakemake command line only looks (-n, -np, --dry-run, --summary...)."""
    short = [a for a in arguments if a.startswith("-") and not a.startswith("--")]
    return any(a.split("=")[0] in LOOKING_OPTIONS for a in arguments) or any("n" in a[1:] for a in short)


def check_target_names(config: dict) -> None:
    """Each of `targets` names its columns (time_to_<t>): two that read the same would collide."""
    seen = {}
    for target in config.get("targets", []):
        label = target_label(target)
        if label in seen:
            raise ConfigError(
                f"config key 'targets': {seen[label]!r} and {target!r} both read {label} (6 significant "
                "digits), so their columns would collide; give targets that differ within 6 digits"
            )
        seen[label] = target


def _same_name(first: Run, second: Run) -> str:
    """One line naming the settings of two runs whose names read the same."""
    values = [(name, getattr(first, name), getattr(second, name)) for name in SETTINGS]
    differ = [f"{name} {a!r} and {b!r}" for name, a, b in values if a != b]
    return (
        f"config key 'experiments': {'; '.join(differ)} give the same run name {first.name} (a target "
        "reads to 6 significant digits); give values that differ within 6 digits"
    )


def check_moved_keys(config: dict) -> None:
    """Keys of `train` that are run settings now: one line saying where each went."""
    for old, new in MOVED_TO_RUN.items():
        if old in config.get("train", {}):
            raise ConfigError(
                f"config key 'train.{old}' moved: it is the run setting '{new}' now; set it under "
                f"`defaults` (defaults: {{{new}: ...}}) or sweep it in an experiment"
            )


def check_local_paths(config: dict) -> None:
    """A local dataset path must exist where snakemake plans (not on every cluster node)."""
    for dataset, data in config["data"].items():
        path = data.get("local_path")
        if path and not Path(path).exists():
            raise ConfigError(f"config key 'data.{dataset}.local_path': {path} does not exist")


def _check_finite(value, key: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}': {value!r} is not a finite number")
    if isinstance(value, dict):
        for name, item in value.items():
            _check_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{key}[{index}]")


def _experiment_runs(experiment) -> list[dict]:
    if isinstance(experiment, list):
        return [dict(run) for run in experiment]
    # A mapping sweeps its lists; `repeats` is a plain number that applies to every run.
    sweep = {key: values for key, values in experiment.items() if key != "repeats"}
    fixed = {"repeats": experiment["repeats"]} if "repeats" in experiment else {}
    keys = list(sweep)
    return [
        {**dict(zip(keys, values, strict=True)), **fixed} for values in itertools.product(*sweep.values())
    ]


def expand(config: dict, networks: dict | None = None) -> tuple[dict[str, Measurement], dict[str, list[str]]]:
    """Return {job name: Measurement} and {job name: the experiments it belongs to}.

    The config has already been validated against the schema (defaults filled in); NETWORKS
    gives the digest of each network of the user's own, by name (networks.read_networks). A run
    asked for in several experiments trains once, as many times as the most repeats asked for.
    """
    digests = {name: network.digest for name, network in (networks or {}).items()}
    repeats: dict[Run, int] = {}
    memberships: dict[Run, list[str]] = {}
    for experiment, spec in config["experiments"].items():
        for index, partial in enumerate(_experiment_runs(spec)):
            settings = {**config["defaults"], **partial}
            run = Run.of(settings)
            if run.model in digests:
                run = replace(run, network=digests[run.model])
            elif run.model not in SHIPPED_MODELS:
                key = "defaults" if "model" not in partial else f"experiments.{experiment}"
                key += f"[{index}]" if isinstance(spec, list) and "model" in partial else ""
                raise ConfigError(
                    f"config key '{key}.model': {run.model!r} is neither a shipped model "
                    f"({', '.join(SHIPPED_MODELS)}) nor a network named under `models`"
                )
            repeats[run] = max(repeats.get(run, 0), settings.get("repeats", 1))
            if experiment not in memberships.setdefault(run, []):
                memberships[run].append(experiment)
    jobs: dict[str, Measurement] = {}
    experiments: dict[str, list[str]] = {}
    for run, count in repeats.items():
        for repeat in range(1, count + 1):
            job = Measurement(run, repeat)
            if job.name in jobs:  # another run that reads the same: one would silently vanish
                raise ConfigError(_same_name(jobs[job.name].run, run))
            jobs[job.name] = job
            experiments[job.name] = memberships[run]
    return jobs, experiments


def datasets_used(jobs: dict[str, Measurement]) -> list[str]:
    return sorted({job.run.dataset for job in jobs.values()})
