"""Readers for the three formats MNIST is published in: Keras `.npz`, IDX and the classic pickle.

Every reader returns the same thing: a dict of the four Keras arrays
(`x_train`, `y_train`, `x_test`, `y_test`) as uint8, so that the sources can be compared. The
`.npz` and IDX readers take any image set in those formats (a dataset of the user's own), and
`image_shape` reads its image shape from the headers alone.
"""

from __future__ import annotations

import codecs
import gzip
import io
import math
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
from pooch import file_hash

from mnistbench.data.dataset import ARRAYS, DataError, check_arrays
from mnistbench.data.dataset import image_shape as shape_of_images

# IDX file names as published (LeCun's and Zalando's servers use the same names).
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# numpy's public readers of a `.npy` header, by format version (np.savez writes 1.0).
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
IDX_DIMENSIONS = (1, 3, 4)  # labels, images (n, h, w), images with channels (n, h, w, c)


def _open_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: corrupt gzip stream ({error})") from error
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes.

    Written by hand because the format is 4 header bytes, the dimensions and raw data;
    no maintained library reads it without pulling in a framework.
    """
    path = Path(path)
    data = _open_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: IDX type 0x{data[2]:02x} is not unsigned bytes")
    shape = _idx_shape(path, data)
    header = 4 + 4 * len(shape)
    expected = header + math.prod(shape)  # Python's int: np.prod would overflow to a wrong size
    if len(data) != expected:
        raise DataError(f"{path}: IDX holds {len(data)} bytes, its header promises {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _idx_shape(path: Path, data: bytes) -> tuple[int, ...]:
    """The sizes an IDX header gives, refused unless image-set-like: numpy itself cannot reshape
    to more than 64 dimensions, and a reader of image sets has no use for anything but images
    and labels."""
    ndim = data[3]
    if ndim not in IDX_DIMENSIONS:
        raise DataError(f"{path}: IDX with {ndim} dimensions; image sets have 1 (labels), 3 or 4")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    return tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))


def write_idx(path: str | Path, array: np.ndarray, compress: bool = True) -> None:
    """Write uint8 `array` as IDX (used to make real-format fixtures)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.tobytes()
    Path(path).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)


def find_idx_files(folder: str | Path) -> dict[str, Path]:
    """The four IDX files of a folder, gzipped or not."""
    folder = Path(folder)
    found = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        if key.startswith("x_"):  # images with channels may be named for their 4 dimensions
            candidates += [folder / f"{stem.replace('idx3', 'idx4')}{end}" for end in (".gz", "")]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            raise DataError(f"{folder}: no {stem}[.gz] in this folder")
        found[key] = existing[0]
    return found


def read_idx_folder(folder: str | Path) -> dict[str, np.ndarray]:
    return {key: read_idx(path) for key, path in find_idx_files(folder).items()}


def read_idx_shape(path: str | Path) -> tuple[int, ...]:
    """The shape an IDX file's header gives, reading the header alone (gzipped or not)."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            head = handle.read(4)
            if len(head) == 4 and head[0] == 0 and head[1] == 0 and head[3] in IDX_DIMENSIONS:
                head += handle.read(4 * head[3])
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: unreadable IDX header ({error})") from error
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    return _idx_shape(path, head)


def read_npz_shape(path: str | Path, key: str) -> tuple[int, ...]:
    """The shape of one array of an `.npz`, from its `.npy` header alone (nothing else is read)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if f"{key}.npy" not in archive.namelist():
                raise DataError(f"{path}: missing arrays {key}")
            with archive.open(f"{key}.npy") as member:
                version = np.lib.format.read_magic(member)
                if version not in _NPY_HEADER_READERS:
                    raise DataError(f"{path}: {key} is in .npy format {version}, unknown here")
                shape, _, _ = _NPY_HEADER_READERS[version](member)
    except DataError:
        raise
    except Exception as error:  # zipfile, numpy and OS errors all mean "unreadable"
        raise DataError(f"{path}: unreadable npz ({error})") from error
    return tuple(shape)


def image_shape(path: str | Path) -> tuple[int, int, int]:
    """(height, width, channels) of the training images of a `.npz` or an IDX folder, from the
    headers alone: cheap enough for planning, whatever the dataset's size."""
    path = Path(path)
    if path.is_dir():
        shape = read_idx_shape(find_idx_files(path)["x_train"])
    else:
        shape = read_npz_shape(path, "x_train")
    if len(shape) not in (3, 4) or 0 in shape[1:]:
        raise DataError(f"{path}: x_train has shape {shape}, expected (n, height, width[, channels])")
    return shape_of_images(shape)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read a Keras-style `.npz`; never with pickles allowed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARRAYS if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)}")
            arrays = {key: archive[key] for key in ARRAYS}
    except DataError:
        raise
    except Exception as error:  # zipfile, numpy and OS errors all mean "unreadable"
        raise DataError(f"{path}: unreadable npz ({error})") from error
    return {key: _labels_as_bytes(value) if key.startswith("y_") else value for key, value in arrays.items()}


def _labels_as_bytes(labels: np.ndarray) -> np.ndarray:
    """Integer labels that fit a byte as uint8 (a user's own set often stores int64); anything
    else is left as it is, for check_arrays to refuse by name."""
    fits = labels.size == 0 or (labels.min() >= 0 and labels.max() <= 255)
    if labels.dtype != np.uint8 and np.issubdtype(labels.dtype, np.integer) and fits:
        return labels.astype(np.uint8)
    return labels


def load_checked(path: str | Path) -> dict[str, np.ndarray]:
    """A Keras-style `.npz` that must hold a well-formed dataset (DataError names the file)."""
    arrays = read_npz(path)
    check_arrays(arrays, str(path))
    return arrays


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only build numpy arrays: a pickle otherwise runs arbitrary code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes bytes in protocol 2 as _codecs.encode(text, "latin1"): data only.
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def read_classic_pickle(path: str | Path, sha256: str) -> dict[str, np.ndarray]:
    """Read the classic `mnist.pkl.gz` (train 50k, validation 10k, test 10k; float32 = uint8/256).

    The file's hash is checked before a single byte is unpickled.
    """
    path = Path(path)
    actual = file_hash(path)
    if actual != sha256:
        raise DataError(f"{path}: sha256 {actual} does not match the expected {sha256}")
    try:
        with gzip.open(path, "rb") as handle:
            splits = _NumpyOnlyUnpickler(io.BufferedReader(handle), encoding="latin1").load()
        (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = splits
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError) as error:
        raise DataError(f"{path}: not the classic MNIST pickle ({error})") from error
    # The canonical 60,000 training images are the 50k training split followed by the 10k
    # validation split, in that order.
    x_train = np.concatenate([x_fit, x_val])
    y_train = np.concatenate([y_fit, y_val])
    return {
        "x_train": _unit_float_to_uint8(x_train, path),
        "y_train": y_train.astype(np.uint8),
        "x_test": _unit_float_to_uint8(x_test, path),
        "y_test": y_test.astype(np.uint8),
    }


def _unit_float_to_uint8(pixels: np.ndarray, path: Path) -> np.ndarray:
    scaled = np.asarray(pixels, dtype=np.float64) * 256.0
    as_bytes = np.rint(scaled)
    if not np.array_equal(as_bytes, scaled) or as_bytes.min() < 0 or as_bytes.max() > 255:
        raise DataError(f"{path}: pixels are not multiples of 1/256 in [0, 1)")
    return as_bytes.astype(np.uint8).reshape(-1, 28, 28)


def write_classic_pickle(path: str | Path, arrays: dict[str, np.ndarray], n_val: int) -> None:
    """Write arrays in the classic pickle layout (used to make real-format fixtures)."""

    def as_float(images):
        return (images.reshape(len(images), -1).astype(np.float32) / 256).astype(np.float32)

    x_train, y_train = arrays["x_train"], arrays["y_train"].astype(np.int64)
    cut = len(x_train) - n_val
    splits = (
        (as_float(x_train[:cut]), y_train[:cut]),
        (as_float(x_train[cut:]), y_train[cut:]),
        (as_float(arrays["x_test"]), arrays["y_test"].astype(np.int64)),
    )
    Path(path).write_bytes(gzip.compress(pickle.dumps(splits, protocol=2), mtime=0))
