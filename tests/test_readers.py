"""The three readers decode the same data identically, and reject damaged or unsafe files."""

import gzip
import pickle

import numpy as np
import pytest

from mnistbench.data import readers
from mnistbench.data.dataset import check_arrays, class_count, content_digest, image_shape
from mnistbench.data.readers import DataError, load_checked
from mnistbench.files import save_npz


def test_npz_idx_and_pickle_decode_to_identical_arrays(formats, arrays):
    from_npz = readers.read_npz(formats["npz"])
    from_idx = readers.read_idx_folder(formats["idx"])
    sha = readers.file_hash(formats["pickle"])
    from_pickle = readers.read_classic_pickle(formats["pickle"], sha)
    for decoded in (from_npz, from_idx, from_pickle):
        for key in readers.ARRAYS:
            assert decoded[key].dtype == np.uint8
            np.testing.assert_array_equal(decoded[key], arrays[key])
    assert content_digest(from_npz) == content_digest(from_idx) == content_digest(from_pickle)


def test_digest_changes_with_a_single_pixel(arrays):
    changed = {key: value.copy() for key, value in arrays.items()}
    changed["x_test"][0, 0, 0] ^= 1
    assert content_digest(changed) != content_digest(arrays)


def test_truncated_idx_is_rejected(tmp_path, arrays):
    path = tmp_path / "train-images-idx3-ubyte"
    readers.write_idx(path, arrays["x_train"], compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="header promises"):
        readers.read_idx(path)


def test_truncated_gzip_is_rejected(tmp_path, arrays):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    readers.write_idx(path, arrays["y_test"])
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="t10k-labels"):
        readers.read_idx(path)


def test_pickle_with_wrong_hash_is_never_unpickled(formats):
    with pytest.raises(DataError, match="does not match"):
        readers.read_classic_pickle(formats["pickle"], "0" * 64)


class _Exploit:
    def __reduce__(self):
        return (print, ("this pickle runs code",))


def test_pickle_that_runs_code_is_refused_even_with_matching_hash(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(_Exploit(), handle, protocol=2)
    with pytest.raises(DataError, match=r"refusing to load (__builtin__|builtins)\.print"):
        readers.read_classic_pickle(path, readers.file_hash(path))


def test_npz_with_missing_key_names_the_file(tmp_path, arrays):
    path = tmp_path / "partial.npz"
    save_npz(path, {key: arrays[key] for key in ("x_train", "y_train", "x_test")})
    with pytest.raises(DataError, match=r"partial.npz: missing arrays y_test"):
        readers.read_npz(path)


def test_npz_holding_objects_is_refused(tmp_path, arrays):
    path = tmp_path / "objects.npz"
    np.savez(path, **{**arrays, "y_test": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(DataError, match="objects.npz"):
        readers.read_npz(path)


def test_truncated_npz_names_the_file(tmp_path, arrays):
    path = tmp_path / "cut.npz"
    save_npz(path, arrays)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="cut.npz: unreadable"):
        load_checked(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(y_train=a["y_train"] * 0, y_test=a["y_test"] * 0), "at least 2 classes"),
        (lambda a: a.update(x_train=a["x_train"][:, :27]), "x_train images have shape"),
        (lambda a: a.update(x_test=a["x_test"][:, :, :, None]), "x_test images"),
        (lambda a: a.update(x_train=a["x_train"][:, 0]), r"x_train has shape \(300, 28\)"),
        (lambda a: a.update(x_train=a["x_train"][:, :, :0]), "expected \\(n, height, width"),
        (lambda a: a.update(y_test=a["y_test"][:-1]), "y_test has shape"),
        (lambda a: a.update(x_test=a["x_test"].astype(np.float32)), "uint8"),
        (lambda a: a.update(y_train=a["y_train"].astype(np.int64)), "y_train is int64, labels must be uint8"),
    ],
)
def test_malformed_arrays_are_rejected(arrays, change, message):
    broken = dict(arrays)
    change(broken)
    with pytest.raises(DataError, match=message):
        check_arrays(broken, "fixture.npz")


def test_expected_sizes_are_enforced(arrays):
    with pytest.raises(DataError, match="expected 60000"):
        check_arrays(arrays, "fixture", sizes=(60000, 10000))


def test_every_single_byte_corruption_of_a_gzipped_idx_file_is_a_data_error(tmp_path, arrays):
    path = tmp_path / "labels.gz"
    readers.write_idx(path, arrays["y_train"])
    original = path.read_bytes()
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            readers.read_idx(path)
        except DataError:
            continue  # named and refused; a change that still decodes is caught by the hashes


def test_idx_header_whose_sizes_overflow_is_refused(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")
    path = tmp_path / "overflow"
    path.write_bytes(header + b"\0" * 16)  # np.prod of these sizes wraps to 0 in int64
    with pytest.raises(DataError, match="header promises"):
        readers.read_idx(path)


def test_standardize_refuses_images_without_variance(arrays):
    from mnistbench.data.prepare import statistics

    with pytest.raises(DataError, match="standardize needs images that vary"):
        statistics(arrays["x_train"] * 0, "standardize")


def idx_bytes(ndim, sizes=None, payload=b"\0"):
    """An IDX file's bytes with `ndim` dimensions (each of size 1 unless `sizes` says otherwise)."""
    sizes = sizes if sizes is not None else [1] * ndim
    return bytes([0, 0, 0x08, ndim]) + b"".join(size.to_bytes(4, "big") for size in sizes) + payload


@pytest.mark.parametrize("compress", [False, True])
def test_idx_with_255_dimensions_is_a_data_error_naming_the_file(tmp_path, compress):
    # A header and data that agree: before, numpy's reshape refused 255 dimensions with a ValueError.
    path = tmp_path / ("many-dims.gz" if compress else "many-dims")
    content = idx_bytes(255)
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(
        DataError, match=r"many-dims(\.gz)?: IDX with 255 dimensions; image sets have 1 \(labels\), 3 or 4"
    ):
        readers.read_idx(path)


def test_every_idx_header_but_an_image_sets_is_a_data_error(tmp_path):
    path = tmp_path / "header"
    for ndim in range(256):
        path.write_bytes(idx_bytes(ndim))
        if ndim in (1, 3, 4):
            assert readers.read_idx(path).shape == (1,) * ndim
        else:
            with pytest.raises(DataError, match=f"IDX with {ndim} dimensions"):
                readers.read_idx(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\0\0",
        b"\0\0\x08",  # no dimension count
        b"\1\0\x08\1" + idx_bytes(1)[4:],  # bad magic
        b"\0\0\x0d\1" + idx_bytes(1)[4:],  # floats
        idx_bytes(3, [1, 1])[:-1],  # a size cut short
        idx_bytes(3, [2**32 - 1] * 3),  # sizes far beyond the data
        idx_bytes(3, [0, 28, 28], b"\0"),  # a byte more than the header says
    ],
)
def test_malformed_idx_headers_are_data_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "damaged-idx"
    for written in (content, gzip.compress(content)):
        path.write_bytes(written)
        with pytest.raises(DataError) as error:
            readers.read_idx(path)
        assert str(error.value).startswith(f"{path}: ")


def test_a_users_own_set_decodes_alike_from_npz_and_idx(own_formats, own_set):
    """20x24 RGB images of five classes, as a plain numpy `.npz` (int64 labels) and as IDX files
    (4-D images): both decode to the arrays written, labels as uint8, and pass the checks."""
    from_npz = readers.read_npz(own_formats["npz"])
    from_idx = readers.read_idx_folder(own_formats["idx"])
    for decoded in (from_npz, from_idx):
        check_arrays(decoded, "own set")
        for key in readers.ARRAYS:
            assert decoded[key].dtype == np.uint8
            np.testing.assert_array_equal(decoded[key], own_set[key])
    assert content_digest(from_npz) == content_digest(from_idx)
    assert from_npz["x_train"].shape == (300, 20, 24, 3)


def test_image_shape_comes_from_the_headers_alone(own_formats, formats, tmp_path):
    assert readers.image_shape(own_formats["npz"]) == (20, 24, 3)
    assert readers.image_shape(own_formats["idx"]) == (20, 24, 3)
    assert readers.image_shape(formats["npz"]) == (28, 28, 1)
    assert readers.image_shape(formats["idx"]) == (28, 28, 1)  # gzipped IDX
    # Only the header is read: a file cut right after it still gives the shape.
    cut = tmp_path / "train-images-idx3-ubyte"
    readers.write_idx(cut, np.zeros((50, 32, 32), np.uint8), compress=False)
    cut.write_bytes(cut.read_bytes()[:16])
    assert readers.read_idx_shape(cut) == (50, 32, 32)
    with pytest.raises(DataError, match="partial.npz: missing arrays x_train"):
        path = tmp_path / "partial.npz"
        np.savez(path, y_train=np.zeros(3, np.uint8))
        readers.image_shape(path)


def test_image_shape_and_class_count_of_arrays(own_set, arrays):
    assert image_shape(own_set["x_train"]) == (20, 24, 3)
    assert image_shape(arrays["x_test"]) == (28, 28, 1)
    assert image_shape((7, 32, 30)) == (32, 30, 1)
    assert class_count(own_set["y_train"], own_set["y_test"]) == 5
    # The highest label of either split counts: a class only the test set holds is a class.
    assert class_count(np.array([0, 1], np.uint8), np.array([0, 3], np.uint8)) == 4


@pytest.mark.parametrize(
    "labels, message", [([0, 1, 256], "int64"), ([0, -1, 1], "int64"), ([0.0, 1.0, 1.0], "float64")]
)
def test_npz_labels_that_do_not_fit_a_byte_are_refused(tmp_path, labels, message):
    path = tmp_path / "labels.npz"
    images = np.zeros((3, 8, 8), np.uint8)
    np.savez(path, x_train=images, y_train=np.array(labels), x_test=images, y_test=np.array([0, 1, 1]))
    with pytest.raises(DataError, match=f"labels.npz: y_train is {message}, labels must be uint8"):
        load_checked(path)
