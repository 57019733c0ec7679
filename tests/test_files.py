"""Durable, atomic outputs: flushed before the rename, the folder after, the umask left alone."""

import os

import pytest

from mnistbench import files


def test_atomic_write_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, target):
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "metrics.json"
    files.write_json(target, {"status": "ok"})
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(tmp_path / ".metrics.json."))  # the temporary file
    assert events[2][1] == str(tmp_path)  # then the folder that holds the new name
    assert target.read_text().strip().endswith("}")


def test_atomic_write_never_touches_the_process_umask(tmp_path, monkeypatch):
    def umask(_):
        raise AssertionError("os.umask changes the umask of every thread of the process")

    monkeypatch.setattr(os, "umask", umask)
    files.write_json(tmp_path / "a.json", {})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~files._UMASK


def test_a_failed_write_leaves_no_file(tmp_path):
    def write(temporary):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        files.atomic_write(tmp_path / "x.csv", write)
    assert list(tmp_path.iterdir()) == []
