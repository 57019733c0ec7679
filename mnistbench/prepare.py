"""Normalisation done once, so that a training job only loads ready float32 arrays."""

from __future__ import annotations

import numpy as np

from mnistbench.files import save_npz

METHODS = ("scale", "standardize", "none")


def normalize(arrays: dict[str, np.ndarray], method: str) -> dict[str, np.ndarray]:
    """Float32 images normalised by `method`; statistics come from the training set only."""
    x_train = arrays["x_train"].astype(np.float32)
    x_test = arrays["x_test"].astype(np.float32)
    if method == "scale":
        shift, scale = 0.0, 255.0
    elif method == "standardize":
        shift, scale = float(x_train.mean()), float(x_train.std())
    elif method == "none":
        shift, scale = 0.0, 1.0
    else:
        raise ValueError(f"normalize: {method!r} is not one of {', '.join(METHODS)}")
    return {
        "x_train": (x_train - shift) / np.float32(scale),
        "y_train": arrays["y_train"],
        "x_test": (x_test - shift) / np.float32(scale),
        "y_test": arrays["y_test"],
        "shift": np.float32(shift),
        "scale": np.float32(scale),
    }


def prepare(arrays: dict[str, np.ndarray], method: str, path) -> None:
    save_npz(path, normalize(arrays, method))
