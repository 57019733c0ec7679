"""Snakemake's locks under faults: calls killed alone, neighbours that end, other users behind
hidepid, crafted records. Real snakemake, real processes, real signals, a real /proc."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest
from conftest import REPO, snakemake, snakemake_command

from mnistbench import locks

LONG = {"defaults": {"batch_size": 8, "hidden_units": 8, "epochs": 400}}
NOBODY = 65534


def _config(formats, **experiments):
    return {**LONG, "experiments": experiments, "data": {"mnist": {"local_path": str(formats["npz"])}}}


def _trainers(run):
    """The live training processes of `run` (any call's)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "mnistbench.training.train import main" in " ".join(command) and f'"name": "{run}"' in command[-1]:
            found.append(process)
    return found


def _wait_for(condition, what, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _start(work, config, *targets):
    command = snakemake_command(work, config, "--cores", "1", *targets)
    return subprocess.Popen(
        command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _training(work, run):
    log = work / "results/runs" / run / "train.log"
    return log.exists() and "epoch 1:" in log.read_text()


def _freeze(call):
    """Stop a call and every process it started (its own and its jobs' process groups alike)."""
    processes = [psutil.Process(call.pid), *psutil.Process(call.pid).children(recursive=True)]
    for process in processes:
        process.suspend()
    return processes


def _kill(processes):
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.mark.slow
@pytest.mark.apart_from("test_hardware")  # its two frozen trainers hold both CPUs: that test's
# runs, which must be pinned, would find none free (others run unpinned meanwhile, and say so)
def test_no_call_frees_a_live_calls_runs(tmp_path, formats):
    """Call A trains X; call B ends normally (Snakemake then deletes every lock of the folder);
    call K trains Y and its snakemake alone is killed with -9 (its job trains on); call C asks
    for everything. C must refuse, naming both holders, and start no trainer; once A and K are
    really gone, the next call clears their locks by itself."""
    config = _config(formats, two={"model": ["softmax", "mlp"]})
    x = "mnist_softmax_adam-lrdefault_b8_e400_scale_s0_tf"
    y = "mnist_mlp8-linear_adam-lrdefault_b8_e400_scale_s0_tf"
    snakemake(tmp_path, config, "--cores", "1", "resources/prepared/mnist_scale.npz")
    a, k, frozen = _start(tmp_path, config, f"results/runs/{x}/metrics.json"), None, []
    try:
        _wait_for(lambda: _training(tmp_path, x), "call A to train")
        frozen += _freeze(a)  # it can neither finish nor release its lock
        # B: nothing to do, yet its end removes the whole lock folder, A's locks included.
        snakemake(tmp_path, config, "--cores", "1", "resources/mnist.npz")
        assert not (tmp_path / ".snakemake/locks").exists()
        held = locks.settle_locks(tmp_path)  # what the next call does first
        assert len(held) == 1 and f"snakemake pid {a.pid} on" in held[0] and "which still runs" in held[0]
        assert len(list((tmp_path / ".snakemake/locks").glob("*.lock"))) == 2  # A's, written back

        k = _start(tmp_path, config, f"results/runs/{y}/metrics.json")
        _wait_for(lambda: _training(tmp_path, y), "call K to train")
        frozen += _freeze(k)
        os.kill(k.pid, signal.SIGKILL)  # its snakemake alone: its job, supervisor and trainer stay
        k.wait()
        # A clock step moves the wall-clock start of every process; records do not use it.
        for path in (tmp_path / locks.HOLDERS).glob("*.json"):
            record = json.loads(path.read_text())
            path.write_text(json.dumps({**record, "started": time.time() + 3600}))
        assert len(_trainers(x)) == len(_trainers(y)) == 1

        c = snakemake(tmp_path, config, "--cores", "2", check=False)
        output = c.stdout + c.stderr
        assert c.returncode != 0, output[-3000:]
        assert f"snakemake pid {a.pid} on" in output and "which still runs" in output, output[-3000:]
        assert (
            f"snakemake pid {k.pid} on" in output and "of its processes (jobs, trainers) still run" in output
        )
        assert "run `snakemake --unlock` once" in output
        assert len(_trainers(x)) == len(_trainers(y)) == 1  # C trained nothing
        assert not (tmp_path / f"results/runs/{x}/metrics.json").exists()
    finally:
        _kill(frozen)
        _kill([psutil.Process(a.pid)] if a.poll() is None else [])
        a.wait()
    _wait_for(lambda: not _trainers(x) and not _trainers(y), "the killed calls' trainers to end", 60)
    after = snakemake(tmp_path, config, "-n", "--cores", "1")
    assert "removed the lock left by snakemake pid" in after.stdout + after.stderr
    assert not list((tmp_path / ".snakemake/locks").glob("*.lock"))
    assert not list((tmp_path / locks.HOLDERS).glob("*.json"))


def _can_hide_pids():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    probe = "mount -t proc -o hidepid=2 proc /proc && true"
    return subprocess.run(["unshare", "--mount", "sh", "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _can_hide_pids(), reason="needs root, unshare and setpriv to mount /proc with hidepid"
)
def test_a_lock_of_another_user_behind_hidepid_is_kept(tmp_path):
    """With /proc mounted hidepid=2, another user's processes are invisible: their lock stays."""
    token = uuid.uuid4().hex
    holder = subprocess.Popen(["sleep", "300"], env={**os.environ, locks.TOKEN_VARIABLE: token})
    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own folders are private to root
    try:
        work = shared / "work"
        (work / locks.LOCKS).mkdir(parents=True)
        (work / locks.LOCKS / "0.output.lock").write_text("results/report.html\n")
        record = {
            **locks.identity(),
            "pid": holder.pid,
            "start_ticks": locks.start_ticks(holder.pid),
            "token": token,
            "executor": "local",
            "locks": {"output": ["results/report.html"]},
        }
        (work / locks.HOLDERS).mkdir(parents=True)
        (work / locks.HOLDERS / f"{token}.json").write_text(json.dumps(record))
        for folder in (shared, work, *work.rglob("*")):
            folder.chmod(0o777)  # so that nobody could remove them: only the check stops it
        check = (
            "import json, sys; from mnistbench import locks; "
            "print(json.dumps(locks.settle_locks(sys.argv[1])))"
        )
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        script = 'mount -t proc -o hidepid=2 proc /proc && exec "$@"'
        result = subprocess.run(
            [
                "unshare",
                "--mount",
                "sh",
                "-c",
                script,
                "sh",
                *as_nobody,
                sys.executable,
                "-c",
                check,
                str(work),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert result.returncode == 0, result.stderr
        held = json.loads(result.stdout.strip().splitlines()[-1])
        assert len(held) == 1 and "run by user 0, whose processes cannot be checked from here" in held[0]
        assert (work / locks.LOCKS / "0.output.lock").exists()
        assert (work / locks.HOLDERS / f"{token}.json").exists()
    finally:
        holder.kill()
        holder.wait()
        shutil.rmtree(shared)


@pytest.mark.parametrize(
    "crafted, why",
    [
        ("[1, 2]", "not a JSON object"),
        ('{"pid": -5, "token": "ab", "locks": {}, "host": "h"}', "not a valid one"),
        ('{"pid": "12", "token": "ab", "locks": {}, "host": "h"}', "'pid' is not a int"),
        ("{not json", "Expecting property name"),
        ('{"pid": 12, "token": "../x", "locks": {}, "host": "h"}', "not a valid one"),
    ],
)
def test_a_crafted_holder_record_is_one_line_and_the_lock_stays(tmp_path, crafted, why):
    (tmp_path / locks.LOCKS).mkdir(parents=True)
    (tmp_path / locks.LOCKS / "0.output.lock").write_text("results/report.html\n")
    (tmp_path / locks.HOLDERS).mkdir(parents=True)
    (tmp_path / locks.HOLDERS / "crafted.json").write_text(crafted)
    held = locks.settle_locks(tmp_path)
    assert len(held) == 2 and all("\n" not in line for line in held)
    assert any("crafted.json is not a holder record" in line and why in line for line in held), held
    assert any("left no record of itself" in line for line in held)
    assert (tmp_path / locks.LOCKS / "0.output.lock").exists()


def test_snakemake_says_a_crafted_record_in_one_line(tmp_path, formats):
    (tmp_path / locks.HOLDERS).mkdir(parents=True)
    (tmp_path / locks.HOLDERS / "crafted.json").write_text('{"pid": -1}')
    result = snakemake(tmp_path, _config(formats, one=[{}]), "-n", "resources/mnist.npz")
    output = result.stdout + result.stderr
    assert "crafted.json is not a holder record" in output and "Traceback" not in output


def test_unlock_forgets_the_records(tmp_path, formats):
    """`snakemake --unlock` is the user's word that nothing runs: no record restores a lock."""
    token = uuid.uuid4().hex
    record = {"host": "elsewhere", "pid": 1, "token": token, "executor": "slurm", "locks": {"output": ["x"]}}
    (tmp_path / locks.HOLDERS).mkdir(parents=True)
    (tmp_path / locks.HOLDERS / f"{token}.json").write_text(json.dumps(record))
    assert any("elsewhere" in line for line in locks.settle_locks(tmp_path))  # kept, and restored
    assert (tmp_path / locks.LOCKS / "0.output.lock").read_text() == "x\n"
    snakemake(tmp_path, _config(formats, one=[{}]), "--unlock")
    assert not list((tmp_path / locks.HOLDERS).glob("*.json"))
    assert locks.settle_locks(tmp_path) == [] and not (tmp_path / locks.LOCKS).exists()


def test_a_record_with_lock_lists_of_non_names_is_refused(tmp_path):
    (tmp_path / locks.HOLDERS).mkdir(parents=True)
    crafted = {"pid": 5, "token": "ab", "host": "h", "locks": {"output": [["x"]]}}
    (tmp_path / locks.HOLDERS / "ab.json").write_text(json.dumps(crafted))
    held = locks.settle_locks(tmp_path)
    assert len(held) == 1 and "not lists of file names" in held[0]
    assert locks.settle_locks(tmp_path, unlocking=True) == []
    assert not list((tmp_path / locks.HOLDERS).glob("*.json"))  # --unlock forgets it too
