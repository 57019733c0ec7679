"""A network of the user's own, in a file (mnistbench/networks.py): trained on every backend as
the shipped models are, counted, named by its config name, retrained when its file changes and
only then, and refused in one line before any job when its file cannot build it."""

import pandas as pd
import pytest
from conftest import snakemake

# A small convnet under the contract: the normalized image in, a tensor out (the workflow adds
# the flatten and the head).
TINY = """
from keras import layers


def build(x, width=4):
    x = layers.Conv2D(width, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    return layers.Conv2D(2 * width, 3, activation="relu")(x)
"""
# By hand, per 28x28x1 image at width 4 (a multiply-add 2 FLOPs, a bias add 1, max pooling 3
# comparisons per output; training adds each weighted layer's weight gradient, and the input
# gradient of every layer above the first):
#   conv 3x3 1->4: 26x26x4 = 2,704 outputs x 9 = 24,336 multiply-adds: 48,672 + 2,704 = 51,376
#   pool 2x2: 13x13x4 = 676 outputs x 3 = 2,028
#   conv 3x3 4->8: 11x11x8 = 968 outputs x 36 = 34,848 multiply-adds: 69,696 + 968 = 70,664
#   head 968->10: 9,680 multiply-adds: 19,360 + 10 = 19,370
TINY_FORWARD = 51_376 + 2_028 + 70_664 + 19_370
#   train: conv 51,376 x 2; pool 2,028 x 2; conv 70,664 x 2 + 69,696; head 19,370 x 2 + 19,360
TINY_TRAIN = 2 * 51_376 + 2 * 2_028 + 2 * 70_664 + 69_696 + 2 * 19_370 + 19_360


def config_with(network_file, formats, experiments, models=None):
    return {
        "models": models or {"tiny-4": {"file": str(network_file), "params": {"width": 4}}},
        "defaults": {"epochs": 1, "batch_size": 64},
        "experiments": experiments,
        "data": {"mnist": {"local_path": str(formats["npz"])}},
    }


@pytest.mark.slow
def test_a_network_file_trains_on_every_backend_and_only_its_edits_retrain_it(tmp_path, formats):
    network = tmp_path / "tiny.py"
    network.write_text(TINY)
    models = {
        "tiny-4": {"file": str(network), "params": {"width": 4}},
        "tiny-2": {"file": str(network), "params": {"width": 2}},  # one file, another size
    }
    experiments = {
        "mine": {"model": ["tiny-4"], "backend": ["tensorflow", "jax", "torch"]},
        "others": [{"model": "tiny-2"}, {"model": "softmax"}],
    }
    work = tmp_path / "work"
    work.mkdir()
    config = config_with(network, formats, experiments, models)
    snakemake(work, config, "--cores", "2")
    runs = pd.read_csv(work / "results/summary/runs.csv")
    assert set(runs["status"]) == {"ok"}, runs[["run", "status", "error"]]
    assert sorted(runs["model"]) == ["softmax", "tiny-2", "tiny-4", "tiny-4", "tiny-4"]
    tiny = runs[runs["model"] == "tiny-4"]
    assert set(tiny["backend"]) == {"tensorflow", "jax", "torch"}
    assert set(tiny["flops_forward_per_image"]) == {TINY_FORWARD}
    assert set(tiny["flops_train_per_image"]) == {TINY_TRAIN}
    # Each definition has its digest; the shipped model none.
    digests = runs.groupby("model")["network"].first()
    assert digests["tiny-4"] != digests["tiny-2"] and pd.isna(digests["softmax"])
    report = (work / "results/report.html").read_text()
    assert "tiny-4" in report and "tiny-2" in report

    # An edit of the file retrains its two networks' runs, never the shipped model's.
    network.write_text(TINY + "\n# tuned\n")
    planned = snakemake(work, config, "-n").stdout  # a dry run lists each job's wildcards
    retrained = {line.split("run=")[1].strip() for line in planned.splitlines() if "wildcards: run=" in line}
    assert retrained == set(runs.loc[runs["model"] != "softmax", "run"])


def net(tmp_path, text):
    path = tmp_path / "net.py"
    path.write_text(text)
    return path


BAD_NETWORKS = [
    # (what is wrong, the file's text or None for no file, a word the line must hold)
    ("no such file", None, "does not exist"),
    ("a syntax error", "def build(x):\n    return x +\n", "line 2"),
    ("no such function", "def make(x):\n    return x\n", "no function 'build'"),
    ("the function raises", "def build(x):\n    raise RuntimeError('wider, please')\n", "wider, please"),
    ("no tensor returned", "def build(x):\n    return 3\n", "returned int, not a tensor"),
    (
        "a layer that cannot build",
        "from keras import layers\n\ndef build(x):\n    return layers.Conv2D(4, 99)(x)\n",
        "zero or negative",
    ),
]


@pytest.mark.parametrize("what, text, said", BAD_NETWORKS, ids=[b[0] for b in BAD_NETWORKS])
def test_a_network_file_that_cannot_build_stops_before_any_job(tmp_path, formats, what, text, said):
    path = net(tmp_path, text) if text is not None else tmp_path / "missing.py"
    work = tmp_path / "work"
    work.mkdir()
    config = config_with(None, formats, {"mine": [{"model": "tiny-4"}]}, {"tiny-4": {"file": str(path)}})
    result = snakemake(work, config, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    lines = [line for line in output.splitlines() if line.startswith("config key 'models.tiny-4'")]
    assert len(lines) == 1, output
    assert str(path) in lines[0] and said in lines[0], lines[0]
    assert not (work / "results").exists() and not (work / "resources").exists()


def test_a_model_that_is_neither_shipped_nor_named_is_refused_in_one_line(tmp_path, formats):
    config = config_with(net(tmp_path, TINY), formats, {"mine": [{"model": "tiny-8"}]})
    result = snakemake(tmp_path, config, "-n", check=False)
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.startswith("config key")]
    assert result.returncode != 0 and len(lines) == 1, output
    assert "experiments.mine[0].model" in lines[0] and "'tiny-8'" in lines[0] and "models" in lines[0]


def test_a_network_may_not_take_a_shipped_models_name(tmp_path, formats):
    models = {"cnn": {"file": str(net(tmp_path, TINY))}}
    config = config_with(None, formats, {"mine": [{"model": "cnn"}]}, models)
    result = snakemake(tmp_path, config, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "config key 'models.cnn': cnn is a shipped model" in output
