"""Time to accuracy from hand-made histories: the two clocks, unreached targets, the per-setting
statistics that count a repeat that never got there."""

import math

import pandas as pd
import pytest

from mnistbench.grid import Run
from mnistbench.report.plots import time_to_accuracy as tta
from mnistbench.results import summary

TARGETS = [0.9, 0.95, 0.97, 0.99]


def history(accuracies, train_seconds=10.0, eval_seconds=1.0):
    """Epochs of train_seconds each, every one evaluated in eval_seconds."""
    n = len(accuracies)
    train_clock = [train_seconds * (i + 1) for i in range(n)]
    return pd.DataFrame(
        {
            "epoch": range(1, n + 1),
            "test_accuracy": accuracies,
            "eval_seconds": [eval_seconds] * n,
            "train_clock": train_clock,
            "wall_clock": [t + eval_seconds * (i + 1) for i, t in enumerate(train_clock)],
        }
    )


def test_time_to_a_target_is_the_end_of_the_first_epoch_that_reached_it_on_both_clocks():
    row = summary.times_to_targets(history([0.85, 0.96, 0.95, 0.975]), TARGETS)
    assert (row["time_to_0.9"], row["wall_to_0.9"], row["epochs_to_0.9"]) == (20.0, 22.0, 2.0)
    assert (row["time_to_0.95"], row["wall_to_0.95"], row["epochs_to_0.95"]) == (20.0, 22.0, 2.0)
    assert (row["time_to_0.97"], row["wall_to_0.97"], row["epochs_to_0.97"]) == (40.0, 44.0, 4.0)


def test_a_target_never_reached_is_empty_never_zero():
    row = summary.times_to_targets(history([0.85, 0.96]), TARGETS)
    assert row["time_to_0.99"] is None and row["wall_to_0.99"] is None and row["epochs_to_0.99"] is None
    assert row["time_to_0.97"] is None


def test_epochs_not_evaluated_do_not_count_and_old_histories_give_empty_times():
    only_last = history([math.nan, math.nan, 0.98])
    row = summary.times_to_targets(only_last, [0.9])
    assert (row["time_to_0.9"], row["epochs_to_0.9"]) == (30.0, 3.0)
    before = pd.DataFrame({"epoch": [1], "loss": [0.3], "seconds": [2.0]})  # no evaluation columns
    assert summary.times_to_targets(before, [0.9]) == {
        "time_to_0.9": None,
        "wall_to_0.9": None,
        "epochs_to_0.9": None,
    }


def test_target_labels_are_short():
    assert [summary.target_label(t) for t in (0.9, 0.97, 1, 0.995)] == ["0.9", "0.97", "1", "0.995"]


@pytest.mark.parametrize(
    "times, median, q1, reached",
    [
        ([10.0, 12.0, 14.0], 12.0, 11.0, 3),
        ([10.0, 12.0, None], 12.0, 11.0, 2),  # the one that never got there is the slowest
        ([10.0, None, None], None, None, 1),  # most never got there: no median
    ],
)
def test_setting_statistics_count_repeats_that_never_reached_a_target_as_slowest(times, median, q1, reached):
    group = pd.DataFrame(
        {
            "model": "mlp",
            "time_to_0.97": times,
            "wall_to_0.97": [t and t + 1 for t in times],
            "epochs_to_0.97": [t and t / 10 for t in times],
        }
    )
    row = summary.target_statistics(group, ["model"]).iloc[0]
    assert row["reached_0.97"] == reached
    for column, expected in (("time_to_0.97_median", median), ("time_to_0.97_q1", q1)):
        assert row[column] == expected if expected else pd.isna(row[column]), column
    assert row["wall_to_0.97_median"] == median + 1 if median else pd.isna(row["wall_to_0.97_median"])


def test_a_runs_training_ends_after_its_last_epoch_and_the_evaluations_between_epochs():
    epochs = [
        {"start": 100.0, "stop": 110.0, "eval_stop": 111.0},
        {"start": 111.0, "stop": 121.0, "eval_stop": 122.0},
    ]
    metrics = {"timeline": {"epochs": epochs}, "eval_every_epoch": True}
    # The train phase is 20 s once the 2 s of evaluations are taken out: 120 would end too early.
    assert summary._training_ended(metrics, 100.0, 20.0) == 122.0
    assert summary._training_ended({**metrics, "eval_every_epoch": False}, 100.0, 20.0) == 121.0
    assert summary._training_ended({}, 100.0, 20.0) == 120.0  # results from before evaluations


def repeats_of_one_setting(statuses, seconds_to_target):
    """runs.csv rows of one setting's repeats, with their statuses and times to 0.9."""
    rows = []
    for repeat, (status, seconds) in enumerate(zip(statuses, seconds_to_target, strict=True), start=1):
        rows.append(
            {
                **Run(model="cnn", epochs=3).settings(),
                "run": f"cnn_r{repeat}",
                "experiments": "models",
                "repeat": repeat,
                "status": status,
                "test_accuracy": 0.93 if status == "ok" else 0.098,
                "test_loss": 0.2 if status == "ok" else math.nan,
                **{column: 3.0 for column in summary.TIMED_COLUMNS},
                "overlap_seconds": 0.0,
                "time_to_0.9": seconds,
                "wall_to_0.9": seconds and seconds + 0.5,
                "epochs_to_0.9": seconds and 1.0,
            }
        )
    return pd.DataFrame(rows)


def test_a_diverged_repeat_counts_as_never_reaching_a_target():
    """The finding: with 2 of 3 repeats diverged, settings.csv said n=1, reached_0.9=1 and a median
    of 2.24 s. Diverged repeats never reach a target: 1 of 3 reached, so there is no median."""
    runs = repeats_of_one_setting(["ok", "diverged", "diverged"], [2.24, None, None])
    row = summary.settings_table(runs).iloc[0]
    assert (row["n"], row["n_to_targets"], row["reached_0.9"]) == (1, 3, 1)
    assert pd.isna(row["time_to_0.9_median"]) and pd.isna(row["wall_to_0.9_median"])
    assert row["time_train_median"] == 3.0  # times and accuracy stay those of the finished repeats
    assert tta.time_to_target_table(pd.DataFrame([row]))["to 90%"][0] == "- (1/3)"


def test_failed_repeats_are_retried_not_counted_and_one_diverged_of_three_is_the_slowest():
    runs = repeats_of_one_setting(["ok", "ok", "diverged", "failed"], [2.0, 3.0, None, None])
    row = summary.settings_table(runs).iloc[0]
    assert (row["n"], row["n_to_targets"], row["reached_0.9"]) == (2, 3, 2)
    assert row["time_to_0.9_median"] == 3.0 and row["time_to_0.9_q3"] != row["time_to_0.9_q3"]  # never
    assert tta.time_to_target_table(pd.DataFrame([row]))["to 90%"][0].startswith("3.00 s [2.50-never] (2/3)")
