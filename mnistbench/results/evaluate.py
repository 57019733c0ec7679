"""Confusion matrix and per-class accuracy from a run's saved predictions (no TensorFlow)."""

import numpy as np
import pandas as pd

from mnistbench.files import write_csv


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted]; bincount on the flattened pair index avoids a scikit-learn dependency."""
    pairs = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def class_count(predictions) -> int:
    """The classes the model predicted over: a column of probabilities each. A run that predicted
    nothing has none; a label beyond them (never, from a trained model) still gets its row."""
    labels = [int(predictions[key].max()) + 1 for key in ("y_true", "y_pred") if predictions[key].size]
    return max([predictions["probabilities"].shape[1], *labels])


def evaluate(predictions_path, confusion_path, per_class_path) -> None:
    with np.load(predictions_path, allow_pickle=False) as predictions:
        y_true, y_pred = predictions["y_true"], predictions["y_pred"]
        n_classes = class_count(predictions)
    counts = confusion_matrix(y_true, y_pred, n_classes)
    confusion = pd.DataFrame(counts, columns=[f"pred_{k}" for k in range(n_classes)])
    confusion.insert(0, "true", range(n_classes))
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(totals > 0, np.diag(counts) / np.maximum(totals, 1), np.nan)
    per_class = pd.DataFrame({"class": range(n_classes), "count": totals, "accuracy": accuracy})
    write_csv(confusion_path, confusion)
    write_csv(per_class_path, per_class)
