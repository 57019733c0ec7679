"""Faults injected into real workflow runs: reproducibility, hard kills, bad data, unsafe input,
and concurrent jobs."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import psutil
import pytest
from conftest import REPO, damage_prepared_data, make_arrays, snakemake, snakemake_command

from mnistbench.files import save_npz
from mnistbench.results import mlperf

SMALL = {
    "defaults": {"batch_size": 32, "hidden_units": 8, "epochs": 2},
    "experiments": {
        "pair": {"model": ["mlp", "cnn"]},
        "backends": {"model": ["mlp"], "backend": ["jax", "torch"]},
    },
}


def with_data(config, path):
    return {**config, "data": {"mnist": {"local_path": str(path)}}}


def run_outputs(work):
    runs = sorted((work / "results/runs").iterdir())
    metrics = {run.name: json.loads((run / "metrics.json").read_text()) for run in runs}
    predictions = {}
    for run in runs:
        with np.load(run / "predictions.npz") as saved:
            predictions[run.name] = saved["probabilities"]
    return metrics, predictions


@pytest.mark.slow
def test_two_fresh_runs_give_identical_numbers(tmp_path, formats):
    results = []
    for name in ("first", "second"):
        work = tmp_path / name
        work.mkdir()
        # The runs and their summary only: the report adds nothing to what is compared here.
        snakemake(work, with_data(SMALL, formats["npz"]), "--cores", "2", "results/summary/runs.csv")
        results.append(run_outputs(work))
    (metrics_a, predictions_a), (metrics_b, predictions_b) = results
    assert metrics_a.keys() == metrics_b.keys() and len(metrics_a) == 4
    for run in metrics_a:
        for key in ("test_accuracy", "test_loss", "status"):
            assert metrics_a[run][key] == metrics_b[run][key], (run, key)
        assert metrics_a[run]["deterministic"] is True
        np.testing.assert_array_equal(predictions_a[run], predictions_b[run])
        # Each training process loads its own framework only, with the threads it was given.
        backend = metrics_a[run]["params"]["backend"]
        assert metrics_a[run]["frameworks_loaded"] == [backend] and metrics_a[run]["threads_used"] == 1
    # Longest first (rule train's priority): the JAX mlp, the shortest, starts last.
    last = max(metrics_a.values(), key=lambda m: m["started_unix"])
    assert last["params"]["backend"] == "jax", [m["run"] for m in metrics_a.values()]


@pytest.mark.slow
def test_hard_kill_during_training_loses_only_the_running_job(tmp_path, formats):
    config = with_data(
        {
            "defaults": {"batch_size": 8, "hidden_units": 8, "epochs": 40},
            "experiments": {"three": {"model": ["softmax", "mlp"], "seed": [0, 1]}},
        },
        formats["npz"],
    )
    command = snakemake_command(tmp_path, config, "--cores", "1")
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    runs = tmp_path / "results/runs"
    interrupted = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and interrupted is None:
        time.sleep(0.2)
        finished = list(runs.glob("*/metrics.json"))
        for log in runs.glob("*/train.log"):
            if finished and not (log.parent / "metrics.json").exists() and "epoch 3:" in log.read_text():
                interrupted = log.parent
    assert interrupted is not None, "no training job was caught running"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    assert not (interrupted / "metrics.json").exists()  # no partial file looks finished
    done_before = {p: p.stat().st_mtime_ns for p in runs.glob("*/metrics.json")}
    assert done_before
    snakemake(tmp_path, config, "--cores", "2")
    after = {p: p.stat().st_mtime_ns for p in runs.glob("*/metrics.json")}
    assert len(after) == 4
    assert {p: after[p] for p in done_before} == done_before  # finished runs were kept
    assert json.loads((interrupted / "metrics.json").read_text())["epochs_completed"] == 40
    assert not list(tmp_path.glob("results/**/.*.tmp*"))


def _bad_npz(kind, path, arrays):
    if kind == "truncated":
        save_npz(path, arrays)
        path.write_bytes(path.read_bytes()[:5000])
    elif kind == "tampered":
        save_npz(path, arrays)
        data = bytearray(path.read_bytes())
        data[100:140] = b"\xff" * 40  # inside the first member's header
        path.write_bytes(bytes(data))
    elif kind == "missing key":
        save_npz(path, {k: v for k, v in arrays.items() if k != "y_train"})
    elif kind == "wrong shape":
        save_npz(path, {**arrays, "x_test": arrays["x_test"].reshape(-1, 28 * 28)})
    elif kind == "label out of range":
        save_npz(path, {**arrays, "y_train": arrays["y_train"] + 5})
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("truncated", "unreadable npz"),
        ("tampered", "unreadable npz"),
        ("missing key", "missing arrays y_train"),
        ("wrong shape", "x_test has shape"),
        ("label out of range", "label 14"),
    ],
)
def test_bad_dataset_file_is_named_and_nothing_is_built_on_it(tmp_path, kind, message):
    bad = _bad_npz(kind, tmp_path / "bad-mnist.npz", make_arrays())
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(work, with_data(SMALL, bad), "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(rf"local_path {re.escape(str(bad))} is unusable: .*{message}", output), output[-2000:]
    assert not (work / "resources/mnist.npz").exists()
    assert not (work / "resources/prepared").exists() and not (work / "results/runs").exists()


def test_dataset_damaged_after_download_is_caught_by_prepare(tmp_path, formats):
    config = with_data(SMALL, formats["npz"])
    snakemake(tmp_path, config, "--cores", "1", "resources/mnist.npz")
    stored = tmp_path / "resources/mnist.npz"
    stored.write_bytes(stored.read_bytes()[:3000])
    prepared = "resources/prepared/mnist_scale.npz"
    result = snakemake(tmp_path, config, "--cores", "1", prepared, check=False)
    assert result.returncode != 0
    assert "resources/mnist.npz: unreadable npz" in result.stdout + result.stderr
    assert not list(tmp_path.glob("resources/prepared/mnist_scale*"))


def test_no_pickle_loading_and_no_shell_in_the_code():
    sources = [
        *REPO.glob("mnistbench/*.py"),
        *REPO.glob("scripts/*.py"),
        *REPO.glob("rules/*.smk"),
        REPO / "Snakefile",
        *REPO.glob("notebooks/*.ipynb"),
    ]
    for path in sources:
        text = path.read_text()
        assert "allow_pickle=True" not in text, path
        assert not re.search(r"^\s*shell:", text, re.M), f"{path}: config values could reach a shell"
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call or path.suffix == ".ipynb", (path, call)


@pytest.mark.parametrize(
    "target",
    [
        "results/runs/../../escaped/metrics.json",
        "/tmp/escaped/metrics.json",
        "resources/../../escaped.npz",
        "results/runs/x/../../../escaped/model.keras",
    ],
)
def test_targets_outside_results_and_resources_are_refused(tmp_path, formats, target):
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(work, with_data(SMALL, formats["npz"]), "--cores", "1", target, check=False)
    assert result.returncode != 0
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped.npz").exists()
    assert not os.path.exists("/tmp/escaped")


def _in_train_phase(log):
    return log.exists() and "epoch 1:" in log.read_text()


@pytest.mark.slow
@pytest.mark.alone  # two jobs each pinned to a CPU of its own: no other worker's job beside them
def test_concurrent_jobs_overlap_without_oversubscribing(tmp_path, formats):
    """With isolate false and two cores, two training jobs run at once, each on its own CPU.
    A rendezvous makes their train phases overlap whatever this machine's speed: the first
    trainer to reach its train phase is frozen until the second has reached its own."""
    config = with_data(
        {
            "defaults": {"batch_size": 8, "hidden_units": 8, "epochs": 60},
            "experiments": {"two": {"model": ["softmax", "mlp"]}},
            "train": {"isolate": False},
        },
        formats["npz"],
    )
    command = snakemake_command(tmp_path, config, "--cores", "2")
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    logs = {run: tmp_path / "results/runs" / run / "train.log" for run in _RUN_NAMES}
    deadline, frozen = time.monotonic() + 300, None
    # Freeze the first trainer seen in its train phase (even if both got there between two looks).
    while time.monotonic() < deadline and frozen is None:
        for run, log in logs.items():
            if _in_train_phase(log):
                (frozen,) = [p for p in _descendants(process.pid) if f'"name": "{run}"' in _command(p)]
                frozen.suspend()
                assert "epoch 60:" not in log.read_text(), "the first trainer ended before it was frozen"
                break
        time.sleep(0.05)
    while time.monotonic() < deadline and not all(_in_train_phase(log) for log in logs.values()):
        time.sleep(0.05)
    assert frozen is not None and all(_in_train_phase(log) for log in logs.values()), "no rendezvous"
    frozen.resume()
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]

    runs = pd.read_csv(tmp_path / "results/summary/runs.csv")
    assert runs["overlap_seconds"].gt(0).all()  # recorded, and so marked in the report
    metrics = [json.loads(p.read_text()) for p in (tmp_path / "results/runs").glob("*/metrics.json")]
    assert len(metrics) == 2
    first, second = sorted(metrics, key=lambda m: m["started_unix"])
    assert second["started_unix"] < first["finished_unix"], "the two training jobs did not run at once"
    assert all(m["threads"] == 1 and m["threads_used"] == 1 for m in metrics)
    if len(os.sched_getaffinity(0)) >= 2:  # each pinned to a CPU of its own
        assert all(m["pinned"] for m in metrics)
        assert len(first["cpus"]) == len(second["cpus"]) == 1 and first["cpus"] != second["cpus"]
    assert not list(tmp_path.glob("**/.*.tmp*")) and not list(tmp_path.glob("**/*.keras.keras"))


_RUN_NAMES = [
    "mnist_softmax_adam-lrdefault_b8_e60_scale_s0_tf",
    "mnist_mlp8-linear_adam-lrdefault_b8_e60_scale_s0_tf",
]


@pytest.mark.slow
def test_a_grid_where_no_run_finishes_never_gets_stuck(tmp_path, formats):
    """Every run fails (its prepared data is damaged): the tables keep their headers, the report
    says no run finished and why each ended, the failed runs are forgotten whatever the targets,
    every call that trained them fails naming them, and the next call trains them again."""
    config = with_data(
        {
            "defaults": {"batch_size": 32, "hidden_units": 8},
            "experiments": {"two": {"model": ["softmax", "mlp"]}},
        },
        formats["npz"],
    )
    damage_prepared_data(tmp_path, config, "mnist")
    runs = tmp_path / "results/runs"
    # Not the default target, and a runtime set on the command line.
    first = snakemake(
        tmp_path,
        config,
        "results/summary/runs.csv",
        "--cores",
        "2",
        "--set-resources",
        "train:runtime=3",
        check=False,
    )
    output = first.stdout + first.stderr
    assert first.returncode != 0 and "2 of 2 runs did not end ok" in output, output[-3000:]
    table = pd.read_csv(tmp_path / "results/summary/runs.csv")
    assert all(f"{name}: failed" in output for name in table["run"])
    # No report was asked for: the message says how to get one, not that it shows them.
    assert "the report shows them" not in output and "`snakemake results/report.html`" in output
    for name in table["run"]:  # never evaluated: no MLPerf log (it would fail the checker), and why
        mlperf_log = (runs / name / "mlperf.log").read_text()
        assert mlperf_log.startswith(mlperf.NO_LOG) and "ended failed before any evaluation" in mlperf_log
    assert set(table["time_limit_s"]) == {120.0}  # the supervisor's limit follows the job's runtime
    assert not list(runs.glob("*/metrics.json"))  # forgotten, so that the next call retries them
    settings = pd.read_csv(tmp_path / "results/summary/settings.csv")
    assert settings.empty and "time_train_median" in settings.columns

    second = snakemake(tmp_path, config, "--cores", "2", check=False)
    output = second.stdout + second.stderr
    assert second.returncode != 0 and "2 of 2 runs did not end ok" in output, output[-3000:]
    assert "the report shows them" in output  # the default target builds it
    report = (tmp_path / "results/report.html").read_text()
    assert "No run finished" in report and "unreadable prepared data" in report
    plan = snakemake(tmp_path, config, "-n", "--quiet", "rules").stdout
    assert re.search(r"^train\s+2$", plan, re.M), plan


def _command(process) -> str:
    """A process's command line, empty once it has ended (a job's short-lived helper can end,
    and be a zombie, between the listing and the look)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_a_training_process_killed_as_the_oom_killer_does_is_recorded_as_crashed(tmp_path, formats):
    config = with_data(
        {
            "defaults": {"batch_size": 8, "hidden_units": 8, "epochs": 30},
            "experiments": {"two": {"model": ["softmax", "mlp"]}},
        },
        formats["npz"],
    )
    command = snakemake_command(tmp_path, config, "--cores", "1")
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    victim, deadline = None, time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.2)
        training = [
            p for p in _descendants(process.pid) if "mnistbench.training.train import main" in _command(p)
        ]
        for trainer in training:
            name = json.loads(trainer.cmdline()[-1])["name"]
            log = tmp_path / "results/runs" / name / "train.log"
            if log.exists() and "epoch 2:" in log.read_text():
                # What the OOM killer picks: the process with the largest memory.
                victim = max(_descendants(process.pid), key=lambda p: p.memory_info().rss)
                killed = name
                break
    assert victim is not None, "no training process was caught running"
    assert "mnistbench.training.train import main" in " ".join(
        victim.cmdline()
    )  # the trainer, not its supervisor
    victim.send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=600)

    assert process.returncode != 0 and f"1 of 2 runs did not end ok ({killed}: crashed)" in output, output[
        -3000:
    ]
    runs = pd.read_csv(tmp_path / "results/summary/runs.csv").set_index("run")
    assert runs.loc[killed, "status"] == "crashed" and "SIGKILL" in runs.loc[killed, "error"]
    assert (runs["status"] == "ok").sum() == 1
    report = (tmp_path / "results/report.html").read_text()
    assert "crashed" in report and "SIGKILL" in report
    assert "recorded as crashed" in (tmp_path / "results/runs" / killed / "train.log").read_text()
    # The next call retries it.
    assert not (tmp_path / "results/runs" / killed / "metrics.json").exists()


def _can_unshare():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return (
        subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode
        == 0
    )


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare to make a PID namespace")
def test_a_live_lock_held_from_another_pid_namespace_is_kept(tmp_path, formats):
    """A snakemake that a second call cannot see (another PID namespace, as in a container or
    on another host) keeps its lock: the second call is refused and says how to unlock."""
    config = with_data(
        {"defaults": {"batch_size": 8, "hidden_units": 8, "epochs": 40}, "experiments": {"one": [{}]}},
        formats["npz"],
    )
    command = snakemake_command(tmp_path, config, "--cores", "1")
    holder = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        logs = tmp_path / "results/runs"
        while time.monotonic() < deadline and not any(
            "epoch 1:" in p.read_text() for p in logs.glob("*/train.log")
        ):
            time.sleep(0.2)
        # Frozen, the first call can neither finish nor release its lock while the second one
        # looks (on a fast day its 40 epochs ended before the second call had started).
        os.killpg(holder.pid, signal.SIGSTOP)
        assert list((tmp_path / ".snakemake/locks").glob("*.lock")), "the first call holds no lock"
        second = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        output = second.stdout + second.stderr
        assert second.returncode != 0, output[-2000:]
        assert "run `snakemake --unlock` once" in output and "cannot be checked from here" in output
        assert list((tmp_path / ".snakemake/locks").glob("*.lock"))  # still there
        assert holder.poll() is None  # and its holder still runs
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
