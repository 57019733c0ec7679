"""What an MNIST-like dataset is: four uint8 arrays, 28x28 images, ten classes; its checks and digest."""

from __future__ import annotations

import hashlib

import numpy as np

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
N_CLASSES = 10
IMAGE_SHAPE = (28, 28)
# (train, test) images of MNIST and Fashion-MNIST alike.
FULL_SIZES = (60000, 10000)


class DataError(ValueError):
    """A dataset file that is unreadable, truncated or holds the wrong arrays."""


def check_arrays(arrays: dict[str, np.ndarray], origin: str, sizes=None) -> None:
    """Raise DataError naming `origin` unless the arrays are a well-formed MNIST-like dataset.

    `sizes` pins the (train, test) counts; None accepts any non-empty subset (fixtures).
    """
    missing = [key for key in ARRAYS if key not in arrays]
    if missing:
        raise DataError(f"{origin}: missing arrays {', '.join(missing)}")
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{origin}: x_{split} has shape {images.shape}, expected (n, 28, 28)")
        if labels.shape != (len(images),):
            raise DataError(f"{origin}: y_{split} has shape {labels.shape}, expected ({len(images)},)")
        if len(images) == 0:
            raise DataError(f"{origin}: x_{split} is empty")
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DataError(f"{origin}: {split} arrays must be uint8")
        if labels.max() >= N_CLASSES:
            raise DataError(f"{origin}: y_{split} holds label {labels.max()}, expected 0-9")
    if sizes is not None:
        counts = (len(arrays["x_train"]), len(arrays["x_test"]))
        if counts != tuple(sizes):
            raise DataError(f"{origin}: {counts[0]}+{counts[1]} images, expected {sizes[0]}+{sizes[1]}")


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, shapes, dtypes and bytes: equal digests, equal data."""
    digest = hashlib.sha256()
    for key in ARRAYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
