"""code_version is the workflow's own: its commit where its folder is a checkout, else a digest of
its source files; and every process of a call runs the package of the workflow folder that runs."""

import json
import os
import subprocess

import pytest
from conftest import REPO, copy_workflow, snakemake

from mnistbench.grid import Run
from mnistbench.measures import machine


def git(folder, *arguments):
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    result = subprocess.run(["git", *identity, "-C", str(folder), *arguments], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def commit_everything(folder):
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "state")
    return git(folder, "rev-parse", "HEAD")


def test_a_copy_inside_another_repository_records_a_digest_of_its_own_files(tmp_path):
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "notes.txt").write_text("another project\n")
    outer_head = commit_everything(outer)
    copy = copy_workflow(outer / "mnistbench-copy")

    version = machine.code_version(copy)
    assert version.startswith("source-sha256:") and outer_head[:12] not in version
    assert version == machine.code_version(copy)  # stable
    # Python's caches, written by every run, are not the code.
    (copy / "mnistbench/report/plots/__pycache__").mkdir()
    (copy / "mnistbench/report/plots/__pycache__/labels.cpython-311.pyc").write_bytes(b"\0cache")
    assert machine.code_version(copy) == version
    # Every kind of source file counts: each edit gives a new version.
    seen = {version}
    for edited in (
        "rules/train.smk",
        "mnistbench/report/plots/labels.py",
        "mnistbench/results/mlperf_rules/mnist.yaml",
        "scripts/train.py",
        "Snakefile",
        "notebooks/report.ipynb",
        "schemas/config.schema.yaml",
    ):
        with open(copy / edited, "a") as file:
            file.write("\n# edited\n")
        version = machine.code_version(copy)
        assert version not in seen, edited
        seen.add(version)


def test_a_checkout_records_its_commit_and_whether_it_was_modified(tmp_path):
    checkout = copy_workflow(tmp_path / "checkout")
    head = commit_everything(checkout)
    assert machine.code_version(checkout) == head[:12]
    (checkout / "untracked-notes.txt").write_text("not code\n")
    assert machine.code_version(checkout) == head[:12]
    with open(checkout / "rules/common.smk", "a") as file:
        file.write("\n# edited\n")
    assert machine.code_version(checkout) == head[:12] + "+modified"
    # Its subfolders are not checkouts of their own: the package's folder is not the workflow's.
    assert machine.code_version(checkout / "mnistbench").startswith("source-sha256:")


@pytest.mark.slow
def test_a_second_copy_run_with_this_checkouts_environment_runs_and_records_its_own_package(
    tmp_path, formats
):
    # The second copy runs with this checkout's virtualenv, whose editable install points here,
    # and with a first checkout's package ahead of it on PYTHONPATH that no process may import.
    second = copy_workflow(tmp_path / "second")
    # A copy that differs from this checkout, so that their versions differ also where this
    # checkout is no git checkout (a release tarball, a copied folder) and both are digests.
    with open(second / "mnistbench/grid.py", "a") as file:
        file.write("\n# the second copy\n")
    first = tmp_path / "first" / "mnistbench"
    first.mkdir(parents=True)
    (first / "__init__.py").write_text("raise ImportError('imported the first checkout\\'s mnistbench')\n")
    work = tmp_path / "work"
    work.mkdir()
    run = Run.of({"model": "softmax", "batch_size": 64, "epochs": 1})
    config = {
        "defaults": {"model": "softmax", "batch_size": 64, "epochs": 1},
        "experiments": {"one": [{}]},
        "data": {"mnist": {"local_path": str(formats["npz"])}},
    }
    env = {
        "PYTHONPATH": os.pathsep.join([str(first.parent), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    }
    result = snakemake(
        work,
        config,
        "--cores",
        "1",
        f"results/runs/{run.name}/metrics.json",
        env=env,
        snakefile=second / "Snakefile",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "first checkout" not in output, output[-3000:]
    metrics = json.loads((work / "results/runs" / run.name / "metrics.json").read_text())
    assert metrics["status"] == "ok", metrics.get("error")
    # The training process ran the second copy's package: its version is the second copy's.
    assert metrics["code_version"] == machine.code_version(second) != machine.code_version(REPO)
