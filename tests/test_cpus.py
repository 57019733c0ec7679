"""CPU pinning of training jobs, and imports a training job keeps out: real processes."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Claims CPUs in a fresh process (pinning the test process itself would slow the suite),
# prints them, and holds them for the given seconds.
CLAIM = (
    "import sys, time; from pathlib import Path; from mnistbench.cpus import claim_cpus; "
    "print(claim_cpus(int(sys.argv[1]), Path(sys.argv[2])), flush=True); time.sleep(float(sys.argv[3]))"
)
ALLOWED = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs at least 2 CPUs")


def hold(count, folder):
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(count), str(folder), "60"], stdout=subprocess.PIPE, text=True
    )
    return process, json.loads(process.stdout.readline())


def claim(count, folder):
    result = subprocess.run(
        [sys.executable, "-c", CLAIM, str(count), str(folder), "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@needs_two_cpus
def test_each_job_gets_a_cpu_of_its_own_until_it_ends(tmp_path):
    first, first_cpus = hold(1, tmp_path)
    try:
        second_cpus = claim(1, tmp_path)
        assert len(first_cpus) == len(second_cpus) == 1 and first_cpus != second_cpus
    finally:
        first.kill()
        first.wait()
    assert claim(1, tmp_path) == [ALLOWED[0]]  # freed when its holder was killed


@needs_two_cpus
def test_more_jobs_than_cpus_run_unpinned(tmp_path):
    holders = [hold(1, tmp_path) for _ in ALLOWED]
    try:
        assert sorted(cpu for _, cpus in holders for cpu in cpus) == ALLOWED
        assert claim(1, tmp_path) == ALLOWED
    finally:
        for process, _ in holders:
            process.kill()
            process.wait()


def test_a_job_given_every_cpu_is_left_as_it_is(tmp_path):
    assert claim(len(ALLOWED), tmp_path) == ALLOWED
    assert not list(tmp_path.iterdir())  # no lock taken


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_training_process_keeps_out_imports_it_never_uses(backend):
    code = (
        "import sys; from mnistbench.train import configure_runtime, frameworks_loaded, skip_unused_imports; "
        f"configure_runtime({backend!r}, 1); skip_unused_imports({backend!r}); import keras; "
        "from mnistbench.train import seed_everything; seed_everything(keras, 0); "
        "keras.layers.Dense(2)(keras.ops.ones((1, 3))); "
        "print(frameworks_loaded(), bool(sys.modules.get('matplotlib.pyplot')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"[{backend!r}] False"


def test_lock_folder_is_shared_like_tmp():
    # Every user's jobs on a machine must see the same locks, or two users' jobs share a CPU.
    from mnistbench.cpus import lock_folder

    folder = lock_folder()
    assert folder.parent == Path(tempfile.gettempdir()) and folder.stat().st_mode & 0o7777 == 0o1777


@needs_two_cpus
def test_a_fifo_or_a_planted_link_as_lock_file_never_hangs_nor_is_followed(tmp_path):
    first, second = ALLOWED[:2]
    os.mkfifo(tmp_path / f"cpu{first}.lock")  # opening it blocking would hang every job
    target = tmp_path / "elsewhere"
    (tmp_path / f"cpu{second}.lock").symlink_to(target)  # another user's trap
    result = subprocess.run(
        [sys.executable, "-c", CLAIM, "1", str(tmp_path), "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    claimed = json.loads(result.stdout)
    assert first not in claimed[:1] or len(claimed) == len(ALLOWED)  # the FIFO's CPU is never taken
    assert second not in claimed or len(claimed) == len(ALLOWED)  # nor the link's
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o777, 0o1755])
def test_an_untrusted_shared_folder_is_not_used(tmp_path, mode):
    from mnistbench import cpus

    folder = tmp_path / "mnistbench-cpus"
    folder.mkdir()
    folder.chmod(mode)  # writable by all without the sticky bit, or not writable by others
    assert not cpus._trusted_folder(folder, shared=True)
    link = tmp_path / "link"
    link.symlink_to(folder)
    assert not cpus._trusted_folder(link, shared=True) and not cpus._trusted_folder(link, shared=False)


def test_a_planted_shared_folder_sends_jobs_to_a_private_one(tmp_path):
    from mnistbench import cpus

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    (tmp_path / "mnistbench-cpus").symlink_to(tmp_path)  # planted by someone else
    code = "from mnistbench.cpus import lock_folder; print(lock_folder())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    private = Path(result.stdout.strip())
    assert private == tmp_path / f"mnistbench-cpus-{os.getuid()}"
    assert cpus._trusted_folder(private, shared=False)
    assert "is not a sticky folder" in result.stderr
