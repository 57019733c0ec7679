"""What an image classification dataset is here: four arrays under Keras's names (uint8 images of
any one shape, uint8 labels 0..n-1), its checks, its shape and class count, and its digest.

MNIST's own facts (28x28, ten classes, 60000+10000 images) stay as constants for the built-in
sources, which pin them; everything else takes the shape and class count from the arrays.
"""

from __future__ import annotations

import hashlib

import numpy as np

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# MNIST's and Fashion-MNIST's facts: 28x28 grayscale images, ten classes, (train, test) images.
N_CLASSES = 10
IMAGE_SHAPE = (28, 28)
FULL_SIZES = (60000, 10000)
# Every built-in source of a dataset must decode to exactly these arrays (see content_digest).
BUILTIN_DIGESTS = {
    "mnist": "869043a08a4d18821fa17546401bfbe66053b5e347a0a99c9ae9e6cbd1f08db0",
    "fashion_mnist": "82aa995a3fccbc9bfb41fa0853f4a48f92e8e42aeb13f78237dd85be83c6e51e",
}


class DataError(ValueError):
    """A dataset file that is unreadable, truncated or holds the wrong arrays."""


def check_arrays(arrays: dict[str, np.ndarray], origin: str, sizes=None, like_mnist: bool = False) -> None:
    """Raise DataError naming `origin` unless the arrays are a well-formed image dataset: uint8
    images (n, h, w) or (n, h, w, c), the same shape in train and test; uint8 labels, one per
    image; at least two classes. `like_mnist`: MNIST's facts too (28x28 images, labels 0-9), for
    any copy of a built-in dataset, a local one included.

    `sizes` pins the (train, test) counts; None accepts any non-empty subset (fixtures).
    """
    missing = [key for key in ARRAYS if key not in arrays]
    if missing:
        raise DataError(f"{origin}: missing arrays {', '.join(missing)}")
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim not in (3, 4) or 0 in images.shape[1:]:
            raise DataError(
                f"{origin}: x_{split} has shape {images.shape}, expected (n, height, width[, channels])"
            )
        if labels.shape != (len(images),):
            raise DataError(f"{origin}: y_{split} has shape {labels.shape}, expected ({len(images)},)")
        if len(images) == 0:
            raise DataError(f"{origin}: x_{split} is empty")
        if images.dtype != np.uint8:
            raise DataError(f"{origin}: x_{split} is {images.dtype}, images must be uint8")
        if labels.dtype != np.uint8:
            raise DataError(f"{origin}: y_{split} is {labels.dtype}, labels must be uint8 (0-255)")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(
            f"{origin}: x_train images have shape {arrays['x_train'].shape[1:]}, "
            f"x_test images {arrays['x_test'].shape[1:]}: they must be alike"
        )
    if like_mnist:
        for split in ("train", "test"):
            images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if images.shape[1:] != IMAGE_SHAPE:
                raise DataError(f"{origin}: x_{split} has shape {images.shape}, expected (n, 28, 28)")
            if labels.max(initial=0) >= N_CLASSES:
                raise DataError(f"{origin}: y_{split} holds label {labels.max()}, expected 0-9")
    if class_count(arrays["y_train"], arrays["y_test"]) < 2:
        raise DataError(f"{origin}: every label is 0; a classification needs at least 2 classes")
    if sizes is not None:
        counts = (len(arrays["x_train"]), len(arrays["x_test"]))
        if counts != tuple(sizes):
            raise DataError(f"{origin}: {counts[0]}+{counts[1]} images, expected {sizes[0]}+{sizes[1]}")


def image_shape(images) -> tuple[int, int, int]:
    """(height, width, channels) of a batch of images (an array or its shape); 1 channel for
    (n, h, w)."""
    shape = tuple(int(size) for size in getattr(images, "shape", images))
    return (*shape[1:3], shape[3] if len(shape) == 4 else 1)


def class_count(y_train: np.ndarray, y_test: np.ndarray) -> int:
    """Classes are numbered 0..n-1: the highest label of either split, plus one."""
    return int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, shapes, dtypes and bytes: equal digests, equal data."""
    digest = hashlib.sha256()
    for key in ARRAYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def dataset_facts(provenance: dict) -> dict:
    """A fetched dataset's image shape ("28x28x1") and class count, from its provenance; one
    fetched before these were recorded has them only if it is a built-in dataset's arrays."""
    shape, n_classes = provenance.get("image_shape"), provenance.get("n_classes")
    if shape is None and provenance.get("content_sha256") in BUILTIN_DIGESTS.values():
        shape, n_classes = [*IMAGE_SHAPE, 1], N_CLASSES
    return {"image_shape": "x".join(map(str, shape)) if shape else None, "n_classes": n_classes}
