"""Normalisation statistics computed once, stored with the images in one uncompressed `.npz`.

The images stay uint8 and the model's first layer applies (x - shift) / scale, the same
arithmetic as normalising beforehand: training never recomputes the statistics, and loads a
quarter of float32's bytes. `load_prepared` reads each stored member straight into its array
(see bench/load_npz.py for the ways measured; docs/measurements.md has the figures).
"""

from __future__ import annotations

import zipfile

import numpy as np

from mnistbench.data.dataset import ARRAYS, DataError, class_count
from mnistbench.files import save_npz

METHODS = ("scale", "standardize", "none")
NORMALIZATION = ("shift", "scale")
# A zip member's local header: 30 fixed bytes, then its name and extra field (PKZIP APPNOTE 4.3.7).
_LOCAL_HEADER = 30
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def statistics(x_train: np.ndarray, method: str) -> tuple[float, float]:
    """(shift, scale) of `method`; standardize uses the training set only."""
    if method == "scale":
        return 0.0, 255.0
    if method == "standardize":
        pixels = x_train.astype(np.float64)
        if pixels.std() == 0:
            raise DataError("normalize: standardize needs images that vary; every training pixel is the same")
        return float(pixels.mean()), float(pixels.std())
    if method == "none":
        return 0.0, 1.0
    raise ValueError(f"normalize: {method!r} is not one of {', '.join(METHODS)}")


def prepare(arrays: dict[str, np.ndarray], method: str, path) -> None:
    """Write the four arrays, the normalisation and the class count (`n_classes`, which sizes
    the model's output) into one uncompressed `.npz` at `path`."""
    shift, scale = statistics(arrays["x_train"], method)
    n_classes = class_count(arrays["y_train"], arrays["y_test"])
    save_npz(
        path,
        {**{name: arrays[name] for name in ARRAYS}, "shift": shift, "scale": scale, "n_classes": n_classes},
    )


def stored_class_count(stored: dict[str, np.ndarray]) -> int:
    """The class count of a prepared file's members; a file prepared before it was stored
    counts its labels."""
    if "n_classes" in stored:
        return int(stored["n_classes"])
    return class_count(stored["y_train"], stored["y_test"])


def read_stored_members(path) -> dict[str, np.ndarray]:
    """Every array of an uncompressed `.npz`, each read with one system call into its memory.

    np.load goes through zipfile's reader, which copies in chunks and checks CRCs: several
    times slower for the same bytes (bench/load_npz.py). numpy has no public call for this.
    """
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
            for member in archive.infolist():
                arrays[member.filename.removesuffix(".npy")] = _read_member(handle, member)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: unreadable prepared data ({error})") from error
    return arrays


def _read_member(handle, member: zipfile.ZipInfo) -> np.ndarray:
    if member.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{member.filename} is compressed")
    handle.seek(member.header_offset + 26)
    name_length, extra_length = np.frombuffer(handle.read(4), "<u2")
    handle.seek(member.header_offset + _LOCAL_HEADER + int(name_length) + int(extra_length))
    read_header = _HEADER_READERS[np.lib.format.read_magic(handle)]
    shape, fortran_order, dtype = read_header(handle)
    if dtype.hasobject or fortran_order:
        raise ValueError(f"{member.filename} is not a plain C-ordered array")
    count = int(np.prod(shape, dtype=np.int64))
    array = np.fromfile(handle, dtype=dtype, count=count)
    if array.size != count:
        raise ValueError(f"{member.filename} is truncated")
    return array.reshape(shape)


def load_prepared(path) -> tuple[dict[str, np.ndarray], float, float]:
    """The prepared arrays, and the model's (shift, scale)."""
    stored = read_stored_members(path)
    return {name: stored[name] for name in ARRAYS}, float(stored["shift"]), float(stored["scale"])


def normalized(images: np.ndarray, shift, scale) -> np.ndarray:
    """What the model sees: float32 (x - shift) / scale (for tests and notebooks)."""
    return (images.astype(np.float32) - np.float32(shift)) / np.float32(scale)


def prepared_path(dataset: str, normalize: str) -> str:
    return f"resources/prepared/{dataset}_{normalize}.npz"
