"""mlperf.log: written from a run's timeline by mllog, checked by mlperf-logging's compliance checker
with the training common rules plus mnist's rules. No training: the timelines are made up."""

import json
import threading

import pytest

from mnistbench.grid import Run
from mnistbench.results import mlperf

SUBMISSION = {"org": "mnistbench tests", "platform": "testhost CPU"}
T0 = 1_700_000_000.0


def make_timeline(accuracies, status="success", target=0.97, evaluated=None) -> dict:
    """Three (or len(accuracies)) epochs of 2 s, each evaluated for 0.3 s after it, unless
    `evaluated` (epoch numbers) says otherwise; the epochs not evaluated have eval keys None."""
    epochs, t = [], T0 + 5
    for number, accuracy in enumerate(accuracies, 1):
        epoch = {"epoch": number, "start": t, "stop": t + 2}
        if evaluated is None or number in evaluated:
            epoch.update(eval_start=t + 2, eval_stop=t + 2.3, eval_accuracy=accuracy)
        else:
            epoch.update(eval_start=None, eval_stop=None, eval_accuracy=None)
        epochs.append(epoch)
        t += 2.5
    return {
        "init_start": T0,
        "init_stop": T0 + 5,
        "run_start": T0 + 5,
        "run_stop": t + 0.1,
        "status": status,
        "epochs": epochs,
        "global_batch_size": 128,
        "train_samples": 60000,
        "eval_samples": 10000,
        "seed": 42,
        "opt_base_learning_rate": 0.001,
        "target_accuracy": target,
    }


def read_log(path) -> list[dict]:
    lines = path.read_text().splitlines()
    assert lines and all(line.startswith(":::MLLOG ") for line in lines)
    return [json.loads(line.removeprefix(":::MLLOG ")) for line in lines]


def keys(events) -> list[str]:
    return [event["key"] for event in events]


def test_a_run_that_reached_its_target_is_compliant(tmp_path, capfd):
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.95, 0.975]), SUBMISSION)
    assert capfd.readouterr() == ("", "")  # mllog's default logger prints to stdout: not used

    events = read_log(path)
    names = keys(events)
    for key in [
        "cache_clear",
        "submission_benchmark",
        "submission_division",
        "submission_status",
        "submission_org",
        "submission_platform",
        "global_batch_size",
        "train_samples",
        "eval_samples",
        "seed",
        "opt_base_learning_rate",
        "gradient_accumulation_steps",
        "target_accuracy",
    ]:
        assert names.count(key) == 1, key
    by_key = {event["key"]: event for event in events}
    assert by_key["submission_benchmark"]["value"] == "mnist"
    assert by_key["submission_division"]["value"] == "open"
    assert by_key["submission_org"]["value"] == SUBMISSION["org"]
    assert by_key["target_accuracy"]["value"] == 0.97
    assert by_key["cache_clear"]["value"] is True
    # The phases in order, each with its recorded time, not the time of writing.
    phases = [key for key in names if key.endswith(("_start", "_stop")) or key == "eval_accuracy"]
    epoch = ["epoch_start", "epoch_stop", "eval_start", "eval_accuracy", "eval_stop"]
    assert phases == ["init_start", "init_stop", "run_start", *epoch * 3, "run_stop"]
    assert names.index("init_stop") > names.index("opt_base_learning_rate")
    assert by_key["init_start"]["time_ms"] == T0 * 1000
    assert by_key["run_stop"]["time_ms"] == round((T0 + 5 + 3 * 2.5 + 0.1) * 1000)
    assert by_key["run_stop"]["metadata"]["status"] == "success"
    numbered = [event["metadata"]["epoch_num"] for event in events if event["key"] in epoch]
    assert numbered == [1] * 5 + [2] * 5 + [3] * 5
    accuracies = [event["value"] for event in events if event["key"] == "eval_accuracy"]
    assert accuracies == [0.91, 0.95, 0.975]

    passed, output = mlperf.check_log(path)
    assert passed, output
    assert "training_6.1.0/common.yaml" in output  # the common rules were checked too
    assert "mnist_benchmark.yaml" in output


@pytest.mark.parametrize("ruleset", ["4.1.0", "5.0.0", "5.1.0", "6.0.0"])
def test_the_log_also_meets_older_training_rulesets(tmp_path, ruleset):
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.95, 0.975]), SUBMISSION)
    passed, output = mlperf.check_log(path, ruleset)
    assert passed, output
    assert f"training_{ruleset}/common.yaml" in output


def test_an_aborted_run_is_a_compliant_log(tmp_path):
    """MLPerf's checker accepts aborted runs (a log of a run that did not converge is still a
    valid log; the result summarizer just does not count it), and mnist's target rule binds only
    runs that claim success."""
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.93, 0.94], status="aborted", target=0.99), SUBMISSION)
    stop = [event for event in read_log(path) if event["key"] == "run_stop"]
    assert [event["metadata"]["status"] for event in stop] == ["aborted"]
    passed, output = mlperf.check_log(path)
    assert passed, output


def test_a_claimed_success_below_the_target_fails_the_check(tmp_path):
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.95, 0.965], target=0.97), SUBMISSION)
    passed, output = mlperf.check_log(path)
    assert not passed
    assert "FAILED" in output and "s['targets'][0]" in output and "Traceback" not in output


def test_it_is_the_last_evaluation_that_must_reach_the_target(tmp_path):
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.98, 0.96], target=0.97), SUBMISSION)
    assert not mlperf.check_log(path)[0]


def test_evaluation_on_the_last_epoch_only(tmp_path):
    path = tmp_path / "mlperf.log"
    timeline = make_timeline([None, None, 0.975], evaluated={3})
    for key in ("eval_start", "eval_stop", "eval_accuracy"):  # left out, as train.py does, or None
        del timeline["epochs"][0][key]
    mlperf.write_log(path, timeline, SUBMISSION)
    events = read_log(path)
    assert keys(events).count("epoch_start") == 3
    evaluations = [event for event in events if event["key"] in ("eval_start", "eval_accuracy", "eval_stop")]
    assert [event["metadata"]["epoch_num"] for event in evaluations] == [3, 3, 3]
    passed, output = mlperf.check_log(path)
    assert passed, output


def test_a_run_without_a_target_logs_none_and_passes(tmp_path):
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.5, 0.6, 0.7], target=None), SUBMISSION)
    assert "target_accuracy" not in keys(read_log(path))
    passed, output = mlperf.check_log(path)
    assert passed, output


@pytest.mark.parametrize(
    "key",
    ["init_stop", "train_samples", "eval_accuracy", "seed", "submission_benchmark"],
)
def test_the_checker_rejects_a_log_that_lacks_a_required_key(tmp_path, key):
    """The common rules require all but seed (which nothing requires: a control) and
    submission_benchmark (which the division rules require)."""
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.95, 0.975], target=None), SUBMISSION)
    lines = path.read_text().splitlines(True)
    path.write_text("".join(line for line in lines if f'"key": "{key}"' not in line))
    passed, output = mlperf.check_log(path)
    assert passed == (key == "seed"), output
    assert "Traceback" not in output
    if not passed:
        assert f"occurrence of '{key}'" in output


def test_the_checker_rejects_another_benchmark(tmp_path):
    path = tmp_path / "mlperf.log"
    mlperf.write_log(path, make_timeline([0.91, 0.95, 0.975]), SUBMISSION)
    path.write_text(path.read_text().replace('"value": "mnist"', '"value": "mnist2"'))
    passed, output = mlperf.check_log(path)
    assert not passed
    assert "v['value'] == 'mnist'" in output and "Traceback" not in output


def test_logs_written_in_one_process_do_not_mix(tmp_path, capfd):
    def write(name, org, epochs):
        submission = {"org": org, "platform": "p"}
        mlperf.write_log(tmp_path / name, make_timeline([0.9] * epochs, target=None), submission)

    write("a.log", "org a", 2)
    write("b.log", "org b", 4)
    threads = [threading.Thread(target=write, args=(f"{n}.log", f"org {n}", 3)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    a, b = read_log(tmp_path / "a.log"), read_log(tmp_path / "b.log")
    assert keys(a).count("epoch_start") == 2 and keys(b).count("epoch_start") == 4
    assert [event["value"] for event in a if event["key"] == "submission_org"] == ["org a"]
    assert [event["value"] for event in b if event["key"] == "submission_org"] == ["org b"]
    for n in range(8):
        events = read_log(tmp_path / f"{n}.log")
        assert keys(events).count("run_stop") == 1 and keys(events).count("epoch_start") == 3
        assert [event["value"] for event in events if event["key"] == "submission_org"] == [f"org {n}"]
    assert capfd.readouterr() == ("", "")
    assert not list(tmp_path.glob("*.partial"))


def test_an_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="status"):
        mlperf.write_log(tmp_path / "mlperf.log", make_timeline([0.9], status="failed"), SUBMISSION)
    assert not (tmp_path / "mlperf.log").exists()


def run_metrics(status: str, timeline: dict | None) -> dict:
    """metrics.json as train.py (or the supervisor, for a crash) writes it, cut to what
    write_run_log reads."""
    metrics = {
        "run": "mnist_cnn_adam-lr0.05_b128_e3_scale_s0_tf_bf16",
        "status": status,
        "params": {**Run(model="cnn", precision="mixed_bfloat16", learning_rate=0.05).params()},
        "started_unix": T0,
        "finished_unix": T0 + 3,
        "host": {"hostname": "testhost"},
        "cpu_model": "AMD EPYC 9B14",
    }
    return {**metrics, **({"timeline": timeline} if timeline else {})}


@pytest.mark.parametrize("status", ["failed", "crashed"])
def test_a_run_that_never_evaluated_gets_no_mlperf_log_and_says_why(tmp_path, status):
    """The finding: such a run's log failed the checker (no eval_accuracy) and claimed fp32 and
    opt_base_learning_rate 0.0 whatever its settings. It has no MLPerf log now; the file says why."""
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(run_metrics(status, None)))
    mlperf.write_run_log(metrics, tmp_path / "mlperf.log", "org")
    text = (tmp_path / "mlperf.log").read_text()
    assert text.startswith(mlperf.NO_LOG) and text.count("\n") == 1 and ":::MLLOG" not in text
    assert f"ended {status} before any evaluation" in text and "eval_accuracy" in text
    assert mlperf.check_log(tmp_path / "mlperf.log") == (False, text)


def test_a_run_that_diverged_after_evaluating_is_an_aborted_log_with_its_own_settings(tmp_path):
    timeline = make_timeline([0.91, 0.1], target=None)
    timeline.update(opt_base_learning_rate=0.05, dtype_policy="mixed_bfloat16")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(run_metrics("diverged", timeline)))
    mlperf.write_run_log(metrics, tmp_path / "mlperf.log", "org")
    by_key = {event["key"]: event for event in read_log(tmp_path / "mlperf.log")}
    assert by_key["run_stop"]["metadata"]["status"] == "aborted"
    assert by_key["lowest_numerical_precision_in_linear"]["value"] == "bfloat16"
    assert by_key["opt_base_learning_rate"]["value"] == 0.05
    passed, output = mlperf.check_log(tmp_path / "mlperf.log")
    assert passed, output
