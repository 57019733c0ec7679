"""A dataset of the user's own, named in the config with its sha256: refused in one line at
planning when the digest is wrong, else downloaded (copied, verified) and prepared as MNIST is,
with its own image shape and class count."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_image_set, snakemake, write_idx_folder

from mnistbench.data.dataset import content_digest
from mnistbench.data.prepare import prepare
from mnistbench.files import save_npz
from mnistbench.results.evaluate import evaluate
from mnistbench.training import run_outputs
from mnistbench.training.pipeline import load_data


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def as_read(arrays):
    """The arrays as every reader gives them: labels uint8."""
    return {key: value.astype(np.uint8) for key, value in arrays.items()}


def config_for(data: dict) -> dict:
    return {"experiments": {name: [{"dataset": name, "model": "mlp"}] for name in data}, "data": data}


def test_a_wrong_sha256_is_refused_at_planning_in_one_line(tmp_path, own_formats):
    wrong = "ab" * 32
    config = config_for({"shapes5": {"local_path": str(own_formats["npz"]), "sha256": wrong}})
    result = snakemake(tmp_path, config, "-n", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("config key")]
    assert errors == [
        f"config key 'data.shapes5.sha256': {own_formats['npz']} has sha256 "
        f"{sha256_of(own_formats['npz'])}, expected {wrong}"
    ], output
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_own_datasets_are_prepared_with_their_shape_and_classes(tmp_path, own_formats, own_set):
    """One set as a plain numpy `.npz` (20x24 RGB, five classes), another as a folder of IDX
    files (32x32 grayscale, three classes): each prepared file holds the arrays written, its
    class count and the normalisation; the provenance records the shape and classes."""
    gray = make_image_set(image_shape=(32, 32), n_classes=3, n_train=240, n_test=60, seed=3)
    gray_idx = write_idx_folder(tmp_path / "gray3-idx", gray)
    config = config_for(
        {
            "shapes5": {"local_path": str(own_formats["npz"]), "sha256": sha256_of(own_formats["npz"])},
            "gray3": {"local_path": str(gray_idx), "sha256": content_digest(as_read(gray))},
        }
    )
    work = tmp_path / "work"
    work.mkdir()
    targets = ["resources/prepared/shapes5_scale.npz", "resources/prepared/gray3_standardize.npz"]
    snakemake(work, config, "--cores", "1", *targets)

    for target, written, shape, n_classes in (
        (targets[0], own_set, (20, 24, 3), 5),
        (targets[1], gray, (32, 32, 1), 3),
    ):
        data = load_data(work / target)
        for key, array in as_read(written).items():
            np.testing.assert_array_equal(getattr(data, key), array)
        assert data.image_shape == shape and data.n_classes == n_classes
        with np.load(work / target, allow_pickle=False) as stored:
            assert int(stored["n_classes"]) == n_classes
    assert load_data(work / targets[0]).scale == 255.0
    gray_data = load_data(work / targets[1])
    assert gray_data.shift == gray["x_train"].astype(np.float64).mean()

    provenance = json.loads((work / "resources/gray3.json").read_text())
    assert provenance["source"] == "local" and provenance["address"] == str(gray_idx)
    assert provenance["image_shape"] == [32, 32, 1] and provenance["n_classes"] == 3
    assert not (work / "results").exists()  # nothing trained


def test_a_file_prepared_before_the_class_count_was_stored_counts_its_labels(tmp_path, own_set):
    arrays = as_read(own_set)
    old = tmp_path / "old_scale.npz"
    save_npz(old, {**arrays, "shift": 0.0, "scale": 255.0})  # what prepare wrote before
    data = load_data(old)
    assert data.n_classes == 5 and data.image_shape == (20, 24, 3)
    new = tmp_path / "new_scale.npz"
    prepare(arrays, "scale", new)
    assert load_data(new).n_classes == 5


def test_evaluate_sizes_its_tables_by_the_predicted_classes(tmp_path):
    """Five classes predicted: a 5x5 confusion matrix counted here by hand; a run that predicted
    nothing (failed) leaves empty tables."""
    y_true = np.array([0, 1, 2, 3, 4, 4, 2], np.uint8)
    y_pred = np.array([0, 1, 2, 3, 3, 4, 0], np.uint8)
    probabilities = np.full((7, 5), 0.2, np.float32)
    save_npz(tmp_path / "p.npz", {"y_true": y_true, "y_pred": y_pred, "probabilities": probabilities})
    evaluate(tmp_path / "p.npz", tmp_path / "confusion.csv", tmp_path / "per_class.csv")
    confusion = pd.read_csv(tmp_path / "confusion.csv").set_index("true")
    expected = np.zeros((5, 5), int)
    for true, predicted in ((0, 0), (1, 1), (2, 2), (3, 3), (4, 3), (4, 4), (2, 0)):
        expected[true, predicted] += 1
    np.testing.assert_array_equal(confusion.to_numpy(), expected)
    assert list(confusion.columns) == [f"pred_{k}" for k in range(5)]
    per_class = pd.read_csv(tmp_path / "per_class.csv")
    assert per_class["count"].tolist() == [1, 1, 2, 1, 2]
    assert per_class["accuracy"].tolist() == [1.0, 1.0, 0.5, 1.0, 0.5]

    save_npz(tmp_path / "failed.npz", run_outputs._predictions(None))
    evaluate(tmp_path / "failed.npz", tmp_path / "c0.csv", tmp_path / "pc0.csv")
    assert pd.read_csv(tmp_path / "c0.csv").empty and pd.read_csv(tmp_path / "pc0.csv").empty


@pytest.mark.slow
def test_an_own_dataset_trains_through_the_whole_chain_to_the_report(tmp_path):
    """32x30 RGB images of four classes: trained by the shipped models and reported."""
    arrays = make_image_set(image_shape=(32, 30, 3), n_classes=4, n_train=256, n_test=64, seed=5)
    path = tmp_path / "patterns4.npz"
    np.savez(path, **arrays)
    config = {
        "defaults": {"dataset": "patterns4", "epochs": 2, "batch_size": 32},
        "experiments": {"mine": {"model": ["softmax", "cnn"]}},
        "data": {"patterns4": {"local_path": str(path), "sha256": sha256_of(path)}},
    }
    work = tmp_path / "work"
    work.mkdir()
    snakemake(work, config, "--cores", "2")
    runs = pd.read_csv(work / "results/summary/runs.csv").set_index("model")
    assert set(runs["status"]) == {"ok"}, runs[["status", "error"]]
    # The patterns are plain: both models learn them (chance is 25%).
    assert (runs["test_accuracy"] > 0.9).all(), runs["test_accuracy"]
    # Softmax regression by hand: 32x30x3 = 2,880 pixels x 4 classes = 11,520 multiply-adds and
    # 4 bias adds forward; training adds the weight gradient only (its input is the data).
    assert runs.loc["softmax", "flops_forward_per_image"] == 2 * 11_520 + 4
    assert runs.loc["softmax", "flops_train_per_image"] == 2 * (2 * 11_520 + 4)
    datasets = pd.read_csv(work / "results/summary/datasets.csv").set_index("dataset")
    assert (
        datasets.loc["patterns4", "image_shape"] == "32x30x3" and datasets.loc["patterns4", "n_classes"] == 4
    )
    confusion = pd.read_csv(work / "results/runs" / runs.loc["cnn", "run"] / "confusion.csv")
    assert confusion.shape == (4, 5) and confusion.drop(columns="true").to_numpy().sum() == 64
    report = (work / "results/report.html").read_text()
    assert "patterns4" in report
