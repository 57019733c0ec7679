"""Confusion matrix and per-class accuracy from a run's saved predictions (no TensorFlow)."""

import numpy as np
import pandas as pd

from mnistbench.dataset import N_CLASSES
from mnistbench.files import write_csv


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """counts[true, predicted]; bincount on the flattened pair index avoids a scikit-learn dependency."""
    pairs = y_true.astype(np.int64) * N_CLASSES + y_pred.astype(np.int64)
    return np.bincount(pairs, minlength=N_CLASSES * N_CLASSES).reshape(N_CLASSES, N_CLASSES)


def evaluate(predictions_path, confusion_path, per_class_path) -> None:
    with np.load(predictions_path, allow_pickle=False) as predictions:
        y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    counts = confusion_matrix(y_true, y_pred)
    confusion = pd.DataFrame(counts, columns=[f"pred_{k}" for k in range(N_CLASSES)])
    confusion.insert(0, "true", range(N_CLASSES))
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(totals > 0, np.diag(counts) / np.maximum(totals, 1), np.nan)
    per_class = pd.DataFrame({"class": range(N_CLASSES), "count": totals, "accuracy": accuracy})
    write_csv(confusion_path, confusion)
    write_csv(per_class_path, per_class)
