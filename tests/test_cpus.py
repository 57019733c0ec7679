"""CPU pinning of training jobs, and imports a training job keeps out: real processes and users."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Claims CPUs in a fresh process (pinning the test process itself would slow the suite), prints
# the Pinning as JSON, and holds the CPUs for the given seconds. An empty folder: the shared one.
CLAIM = (
    "import dataclasses, json, sys, time; from pathlib import Path; "
    "from mnistbench.training.cpus import claim_cpus; "
    "pinning = claim_cpus(int(sys.argv[1]), Path(sys.argv[2]) if sys.argv[2] else None); "
    "print(json.dumps(dataclasses.asdict(pinning)), flush=True); time.sleep(float(sys.argv[3]))"
)
ALLOWED = sorted(os.sched_getaffinity(0))
NOBODY, OTHER_UID = 65534, 65533  # OTHER_UID needs no passwd entry
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs at least 2 CPUs")


def as_user(uid):
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid else []


def claim_command(count, folder, seconds, uid=None):
    return [*as_user(uid), sys.executable, "-c", CLAIM, str(count), str(folder or ""), str(seconds)]


def hold(count, folder, **options):
    process = subprocess.Popen(
        claim_command(count, folder, 60, options.pop("uid", None)),
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        **options,
    )
    return process, json.loads(process.stdout.readline())


def claim_logging(count, folder=None, uid=None, **options):
    """The Pinning a fresh process got (as a dict), and what it logged."""
    result = subprocess.run(
        claim_command(count, folder, 0, uid), capture_output=True, text=True, cwd=REPO, timeout=60, **options
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def claim(count, folder=None, uid=None, **options):
    return claim_logging(count, folder, uid, **options)[0]


def stop(process):
    process.kill()
    process.wait()


@pytest.fixture
def shared_tmp():
    """A TMPDIR like /tmp (root's, sticky, writable by all) that other users can reach, for
    jobs of several users: as root, with setpriv, where other users can run this Python."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run jobs as other users")
    probe = subprocess.run(
        [*as_user(NOBODY), sys.executable, "-c", "import mnistbench.training.cpus"], cwd=REPO
    )
    if probe.returncode != 0:
        pytest.skip("other users cannot run this Python or import mnistbench")
    folder = Path(tempfile.mkdtemp(prefix="mnistbench-test-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


def shared_env(tmpdir):
    return {**os.environ, "TMPDIR": str(tmpdir)}


@needs_two_cpus
def test_each_job_gets_a_cpu_of_its_own_until_it_ends(tmp_path):
    first, first_pinning = hold(1, tmp_path)
    try:
        second_pinning = claim(1, tmp_path)
        assert first_pinning["pinned"] and second_pinning["pinned"]
        assert len(first_pinning["cpus"]) == len(second_pinning["cpus"]) == 1
        assert first_pinning["cpus"] != second_pinning["cpus"]
    finally:
        stop(first)
    assert claim(1, tmp_path) == {"cpus": [ALLOWED[0]], "pinned": True, "why_unpinned": None}  # freed


@needs_two_cpus
def test_more_jobs_than_cpus_run_unpinned_and_say_so(tmp_path):
    holders = [hold(1, tmp_path) for _ in ALLOWED]
    try:
        assert sorted(cpu for _, pinning in holders for cpu in pinning["cpus"]) == ALLOWED
        pinning, logged = claim_logging(1, tmp_path)
        assert pinning == {"cpus": ALLOWED, "pinned": False, "why_unpinned": "only 0 of 1 CPUs free"}
        assert "only 0 of 1 CPUs free: running unpinned" in logged
    finally:
        for process, _ in holders:
            stop(process)


def test_a_job_given_every_cpu_is_left_as_it_is(tmp_path):
    pinning, logged = claim_logging(len(ALLOWED), tmp_path)
    assert pinning == {
        "cpus": ALLOWED,
        "pinned": False,
        "why_unpinned": f"the job may use only {len(ALLOWED)} CPUs already",
    }
    assert not list(tmp_path.iterdir()) and not logged  # no lock taken, nothing to warn about


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_training_process_keeps_out_imports_it_never_uses(backend):
    code = (
        "import sys; from mnistbench.training.runtime import configure_runtime, frameworks_loaded, "
        "skip_unused_imports; "
        f"configure_runtime({backend!r}, 1); skip_unused_imports({backend!r}); import keras; "
        "from mnistbench.training.runtime import seed_everything; seed_everything(keras, 0); "
        "keras.layers.Dense(2)(keras.ops.ones((1, 3))); "
        "print(frameworks_loaded(), bool(sys.modules.get('matplotlib.pyplot')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"[{backend!r}] False"


@needs_two_cpus
def test_lock_folder_is_shared_like_tmp(shared_tmp):
    # Every user's jobs on a machine must see the same locks, or two users' jobs share a CPU.
    pinning = claim(1, env=shared_env(shared_tmp))
    folder = shared_tmp / "mnistbench-cpus"
    assert pinning["pinned"] and folder.stat().st_mode & 0o7777 == 0o1777 and folder.stat().st_uid == 0


@needs_two_cpus
def test_a_fifo_or_a_planted_link_as_lock_file_never_hangs_nor_is_followed(tmp_path):
    first, second = ALLOWED[:2]
    os.mkfifo(tmp_path / f"cpu{first}.lock")  # opening it blocking would hang every job
    target = tmp_path / "elsewhere"
    (tmp_path / f"cpu{second}.lock").symlink_to(target)  # another user's trap
    pinning = claim(1, tmp_path)
    assert pinning["pinned"] == (len(ALLOWED) > 2)  # with 2 CPUs, neither is free
    if pinning["pinned"]:
        assert first not in pinning["cpus"] and second not in pinning["cpus"]
    assert not target.exists()
    assert stat.S_ISFIFO(os.lstat(tmp_path / f"cpu{first}.lock").st_mode)
    assert (tmp_path / f"cpu{second}.lock").is_symlink()


def plant_file(folder):
    folder.write_text("")


def plant_link(folder):
    folder.symlink_to(folder.parent)


def plant_mode(mode):
    def plant(folder):
        folder.mkdir()
        folder.chmod(mode)

    return plant


@needs_two_cpus
@pytest.mark.parametrize(
    "plant, why",
    [
        (plant_link, "is a symbolic link"),
        (plant_file, "is not a folder"),
        (plant_mode(0o777), "has mode 0777, not 1777 (sticky, writable by all)"),  # others could swap files
        (
            plant_mode(0o1755),
            "has mode 1755, not 1777 (sticky, writable by all)",
        ),  # others' jobs could not lock
    ],
)
def test_an_unusable_shared_folder_leaves_jobs_unpinned_and_says_why(tmp_path, plant, why):
    folder = tmp_path / "mnistbench-cpus"
    plant(folder)
    pinning, logged = claim_logging(1, env=shared_env(tmp_path))
    reason = f"CPU lock folder {folder} {why}"
    assert pinning == {"cpus": ALLOWED, "pinned": False, "why_unpinned": reason}
    assert logged.splitlines() == [f"{reason}: running unpinned"]
    assert [path.name for path in tmp_path.iterdir()] == ["mnistbench-cpus"]  # no private folder instead


@needs_two_cpus
def test_a_shared_folder_made_by_another_user_leaves_our_jobs_unpinned(shared_tmp):
    # Before: this job fell back to a private folder and was pinned to the very CPU nobody's holds.
    env = shared_env(shared_tmp)
    nobodys_job, nobodys_pinning = hold(1, None, uid=NOBODY, env=env)
    try:
        assert nobodys_pinning["pinned"]  # the folder is nobody's own: trusted by nobody
        pinning, logged = claim_logging(1, env=env)
    finally:
        stop(nobodys_job)
    folder = shared_tmp / "mnistbench-cpus"
    reason = f"CPU lock folder {folder} belongs to uid {NOBODY}, neither root nor us"
    assert pinning == {"cpus": ALLOWED, "pinned": False, "why_unpinned": reason}
    assert logged.splitlines() == [f"{reason}: running unpinned"]
    assert [path.name for path in shared_tmp.iterdir()] == ["mnistbench-cpus"]


def make_shared_folder(tmpdir):
    folder = tmpdir / "mnistbench-cpus"
    folder.mkdir()
    folder.chmod(0o1777)  # as claim_cpus makes it, here as root's
    return folder


@needs_two_cpus
def test_lock_files_made_under_umask_077_serve_every_user(shared_tmp):
    folder = make_shared_folder(shared_tmp)
    env = shared_env(shared_tmp)
    assert claim(1, uid=NOBODY, env=env, umask=0o077)["cpus"] == [ALLOWED[0]]
    lock = os.stat(folder / f"cpu{ALLOWED[0]}.lock")
    assert lock.st_uid == NOBODY and lock.st_mode & 0o7777 == 0o644
    # Another user (no root powers to read a 0600 file) gets that CPU, free again.
    assert claim(1, uid=OTHER_UID, env=env) == {"cpus": [ALLOWED[0]], "pinned": True, "why_unpinned": None}


@needs_two_cpus
def test_another_users_lock_file_in_the_sticky_folder_serves_root_too(shared_tmp):
    # With fs.protected_regular on (1 or 2, systemd's default), opening another user's file in a
    # sticky folder with O_CREAT fails even for root, even when the file exists: that CPU would look
    # busy for good. With it off (as on some machines), this test passes either way.
    folder = make_shared_folder(shared_tmp)
    env = shared_env(shared_tmp)
    assert claim(1, uid=NOBODY, env=env)["cpus"] == [ALLOWED[0]]
    assert os.stat(folder / f"cpu{ALLOWED[0]}.lock").st_uid == NOBODY
    assert claim(1, env=env) == {"cpus": [ALLOWED[0]], "pinned": True, "why_unpinned": None}
    assert claim(1, uid=OTHER_UID, env=env)["cpus"] == [ALLOWED[0]]
