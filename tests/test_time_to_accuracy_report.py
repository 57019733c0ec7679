"""Time to accuracy in the report, from hand-made summary tables: the key-result lines per model,
the table of every setting's time to each target, DAWNBench's plot and the learning curves."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mnistbench.grid import Run
from mnistbench.report import plots
from mnistbench.report.plots import time_to_accuracy as tta
from mnistbench.results import summary

TARGETS = [0.9, 0.95, 0.97, 0.98, 0.99]


def setting(times: dict, reached: dict, accuracy: float, n: int = 3, **overrides) -> dict:
    """A row of settings.csv: `times` maps a target to (median, q1, q3, wall median, epochs) of
    the repeats that got most of the way there; `reached` how many repeats reached each target."""
    row = {**Run().settings(), "n": n, "runs": "", "experiments": "models", **overrides}
    row.update(time_train_median=30.0, time_train_q1=29.0, time_train_q3=31.0, test_accuracy_median=accuracy)
    row.update(noisy=False, overlapped=False, identical_results=True)
    for target in map(summary.target_label, TARGETS):
        median, q1, q3, wall, epochs = times.get(target, (math.nan,) * 5)
        row.update({f"time_to_{target}_median": median, f"time_to_{target}_q1": q1})
        row.update({f"time_to_{target}_q3": q3, f"wall_to_{target}_median": wall})
        row.update({f"epochs_to_{target}_median": epochs, f"reached_{target}": reached.get(target, 0)})
    return row


# Labels name the settings that vary among these (not the backend, which does not).
CNN_ADAM = "cnn adam b128 e3"
CNN_SGD = "cnn sgd b32 e3"
MLP = "mlp64-linear adam b32 e2"
SOFTMAX = "softmax sgd b32 e1"


@pytest.fixture
def settings():
    """Two cnn settings (adam reaches 98% in 1 of 3 repeats, sgd 97% in 2 of 3), an mlp reaching 90%
    (95% in 1 of 3) and a softmax reaching no target; 90% is the highest target most reached."""
    cnn = dict(model="cnn", hidden_units=None, activation=None, epochs=3)
    return pd.DataFrame(
        [
            setting(
                {
                    "0.9": (4.1, 4.0, 4.2, 4.6, 1.0),
                    "0.95": (4.1, 4.0, 4.2, 4.6, 1.0),
                    "0.97": (12.31, 12.1, 12.5, 14.02, 2.0),
                },
                {"0.9": 3, "0.95": 3, "0.97": 3, "0.98": 1},
                0.9791,
                batch_size=128,
                **cnn,
            ),
            setting(
                {"0.9": (6.0, 5.9, 6.1, 7.0, 1.0), "0.97": (20.0, 19.0, math.nan, 23.0, 3.0)},
                {"0.9": 3, "0.95": 3, "0.97": 2},
                0.9712,
                optimizer="sgd",
                **cnn,
            ),
            setting(
                {"0.9": (3.0, 2.9, 3.1, 3.3, 2.0)},
                {"0.9": 3, "0.95": 1},
                0.9433,
                hidden_units=64,
                epochs=2,
                experiments="lesson",
            ),
            setting({}, {}, 0.8812, model="softmax", hidden_units=None, activation=None, optimizer="sgd"),
        ]
    )


def test_key_results_lead_with_the_fastest_setting_to_each_models_highest_target(settings):
    lines = plots.key_results(settings)
    assert lines[0].startswith("**course lesson**")  # the seed lines first, then the targets
    assert lines[1] == (
        f"**Fastest to 97%** (cnn): {CNN_ADAM}, 12.31 s [12.10-12.50] train phase "
        "(n=3, 3 of 3 reached), 14.02 s with evaluation on the clock, epoch 2."
    )
    assert lines[2] == (
        f"**Fastest to 90%** (mlp64-linear): {MLP}, 3.00 s [2.90-3.10] train phase "
        "(n=3, 3 of 3 reached), 3.30 s with evaluation on the clock, epoch 2."
    )
    assert lines[3].startswith("**No target reached** (softmax)") and "88.12%" in lines[3]
    assert lines[4].startswith("**Most accurate**")
    assert not any("Fastest train phase" in line for line in lines)


def test_a_target_most_repeats_missed_is_not_the_models_highest(settings):
    """The cnn adam setting reached 98% in 1 of 3 repeats: no median, so 97% is its highest."""
    settings.loc[1, ["time_to_0.97_median", "wall_to_0.97_median"]] = 10.0  # cnn sgd now faster
    line = tta.fastest_to_target_lines(settings)[0]
    assert line.startswith(f"**Fastest to 97%** (cnn): {CNN_SGD}, 10.00 s")


def test_results_without_targets_say_so():
    old = pd.DataFrame([setting({}, {}, 0.95)]).filter(regex="^(?!time_to_|wall_to_|epochs_to_|reached_)")
    assert tta.fastest_to_target_lines(old)[0].startswith("**Time to accuracy**: no accuracy targets")
    assert tta.time_to_target_table(old).empty


def test_a_model_with_no_times_but_accurate_enough_predates_the_per_epoch_evaluation():
    old = pd.DataFrame([setting({}, {}, 0.9612)])  # targets configured, histories without evaluations
    line = tta.fastest_to_target_lines(old)[0]
    assert line.startswith("**No time to accuracy** (mlp64-linear)") and "96.12%" in line


def test_the_table_has_every_settings_time_to_each_target_sorted_by_the_highest_most_reached(settings):
    table = tta.time_to_target_table(settings).set_index("setting")
    assert list(table.index) == [MLP, CNN_ADAM, CNN_SGD, SOFTMAX]  # by time to 90%, not to 97%
    assert list(table.columns) == ["n", "to 90%", "to 95%", "to 97%", "to 98%", "to 99%", "final accuracy"]
    assert table.loc[CNN_ADAM, "to 97%"] == "12.31 s [12.10-12.50] (3/3), wall 14.02 s, epoch 2"
    assert table.loc[CNN_ADAM, "to 98%"] == "- (1/3)"
    # 2 of 3 repeats reached it: the upper quartile is the one that never did.
    assert table.loc[CNN_SGD, "to 97%"] == "20.00 s [19.00-never] (2/3), wall 23.00 s, epoch 3"
    assert table.loc[MLP, "to 95%"] == "- (1/3)"
    assert table.loc[SOFTMAX, "to 90%"] == "- (0/3)"
    assert table.loc[SOFTMAX, "final accuracy"] == "88.12%"


def run_row(name: str, history: pd.DataFrame, repeat: int = 1, status: str = "ok", **overrides) -> dict:
    row = {**Run().settings(), **overrides, "run": name, "repeat": repeat, "status": status}
    return {**row, **summary.times_to_targets(history if status == "ok" else history.iloc[:0], TARGETS)}


def epochs(run: str, accuracies: list[float], seconds: float) -> pd.DataFrame:
    """A history.csv part: every epoch evaluated, `seconds` of training each."""
    n = len(accuracies)
    clock = [seconds * (epoch + 1) for epoch in range(n)]
    return pd.DataFrame(
        {
            "run": run,
            "epoch": range(1, n + 1),
            "loss": [1.0 / (epoch + 1) for epoch in range(n)],
            "accuracy": [round(a - 0.01, 3) for a in accuracies],
            "test_accuracy": accuracies,
            "test_loss": [0.5 / (epoch + 1) for epoch in range(n)],
            "train_clock": clock,
            "wall_clock": [c + 0.5 * (epoch + 1) for epoch, c in enumerate(clock)],
        }
    )


@pytest.fixture
def measured():
    """History and runs: cnn adam in three repeats, cnn sgd, an mlp whose first repeat failed and
    a one-epoch softmax; the cnns reach 97%, the mlp 95%, the softmax 90%."""
    cnn = dict(model="cnn", hidden_units=None, activation=None, epochs=3)
    parts = {
        ("cnn-adam", 1): epochs("cnn-adam", [0.95, 0.975, 0.979], 6.0),
        ("cnn-adam", 2): epochs("cnn-adam_r2", [0.95, 0.975, 0.981], 5.0),
        ("cnn-adam", 3): epochs("cnn-adam_r3", [0.95, 0.975, 0.979], 7.0),
        ("cnn-sgd", 1): epochs("cnn-sgd", [0.93, 0.96, 0.971], 9.0),
        ("mlp", 1): epochs("mlp", [0.8], 2.0),
        ("mlp", 2): epochs("mlp_r2", [0.93, 0.951], 2.0),
        ("softmax", 1): epochs("softmax", [0.91], 1.0),
    }
    settings = {
        "cnn-adam": dict(cnn, batch_size=128),
        "cnn-sgd": dict(cnn, optimizer="sgd"),
        "mlp": dict(hidden_units=64, epochs=2),
        "softmax": dict(model="softmax", hidden_units=None, activation=None, optimizer="sgd"),
    }
    runs = pd.DataFrame(
        [
            run_row(
                part["run"].iloc[0],
                part,
                repeat,
                "failed" if part["run"].iloc[0] == "mlp" else "ok",
                **settings[name],
            )
            for (name, repeat), part in parts.items()
        ]
    )
    return pd.concat(parts.values(), ignore_index=True), runs


def curves(figure) -> dict[str, list]:
    axes = figure.axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    solid = [line for line in axes.lines if line.get_linestyle() != "--"]
    return dict(zip(labels, solid, strict=True)), [
        line for line in axes.lines if line.get_linestyle() == "--"
    ]


def test_dawnbench_plot_draws_each_settings_first_finished_repeat_and_the_targets(measured):
    history, runs = measured
    figure = tta.accuracy_vs_time(history, runs)
    lines, targets = curves(figure)
    assert list(lines) == [CNN_ADAM, CNN_SGD, MLP, SOFTMAX]  # the highest target reached fastest first
    assert list(lines[CNN_ADAM].get_xdata()) == [6.0, 12.0, 18.0]  # the first repeat, not r2
    assert list(lines[MLP].get_ydata()) == [0.93, 0.951]  # its first repeat failed
    assert sorted(line.get_ydata()[0] for line in targets) == TARGETS
    assert figure.axes[0].get_xscale() == "log"
    plt.close(figure)


def test_dawnbench_plot_keeps_the_settings_reaching_the_highest_target_fastest(measured):
    history, runs = measured
    figure = tta.accuracy_vs_time(history, runs, most=2)
    assert list(curves(figure)[0]) == [CNN_ADAM, CNN_SGD]
    plt.close(figure)


def test_no_dawnbench_plot_without_per_epoch_test_accuracy(measured):
    history, runs = measured
    old = history[["run", "epoch", "loss", "accuracy"]]
    assert tta.accuracy_vs_time(old, runs) is None
    assert tta.accuracy_vs_time(history.assign(test_accuracy=math.nan), runs) is None


def test_learning_curves_draw_the_test_accuracy_dashed_beside_the_training_accuracy(measured):
    history, runs = measured
    figure = plots.learning_curves(history, runs)
    accuracy = next(axes for axes in figure.axes if axes.get_title() == "accuracy")
    drawn = {
        tuple(line.get_ydata()): line.get_linestyle() for line in accuracy.lines if len(line.get_ydata())
    }
    assert drawn[(0.95, 0.975, 0.979)] == "--"  # cnn-adam's test accuracy
    assert drawn[(0.94, 0.965, 0.969)] == "-"  # its training accuracy
    plt.close(figure)
    old = plots.learning_curves(history[["run", "epoch", "loss", "accuracy"]], runs)
    assert all(line.get_linestyle() == "-" for axes in old.axes for line in axes.lines)
    plt.close(old)


def test_half_of_an_even_number_of_repeats_reaching_a_target_is_not_said_to_predate_evaluation():
    """The finding: 1 of 2 repeats reached 90% (no median) and the median accuracy passed 90%, and
    the line said the runs had no per-epoch test accuracy."""
    half = pd.DataFrame([setting({}, {"0.9": 1}, 0.905, n=2)])
    line = tta.fastest_to_target_lines(half)[0]
    assert "predate" not in line and "per-epoch" not in line
    assert line == (
        "**No target reached** (mlp64-linear): no setting got most of its repeats to 90% "
        "(at best 1 of 2 repeats, mlp64-linear adam b32 e1 tensorflow); best median test accuracy 90.50%."
    )
