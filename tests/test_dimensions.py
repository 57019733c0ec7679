"""The report's sections per swept dimension, from hand-made runs tables: every other setting held
fixed, labels naming what varies, ratio tables per kind of dimension, spreads of one setting's
repeats only, and figures that stay bounded at 1000 settings."""

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mnistbench.grid import Run
from mnistbench.report import compare, plots
from mnistbench.report.plots import dimensions, figures
from mnistbench.report.plots.key_results import MOST_NAMED, dimension_headline
from mnistbench.report.plots.labels import setting_label
from mnistbench.results import summary


def runs_of(sweep: dict, repeats: int = 3, seconds=None, accuracy=None) -> pd.DataFrame:
    """A runs.csv of every combination of `sweep`, each with `repeats` repeats; `seconds` and
    `accuracy` map (settings, repeat) to the train phase and the test accuracy."""
    seconds = seconds or (lambda s, r: 10.0 / s["batch_size"] + 0.01 * r)
    accuracy = accuracy or (lambda s, r: 0.9 + 0.001 * r)
    rows = []
    for values in itertools.product(*sweep.values()):
        run = Run.of({**Run().settings(), **dict(zip(sweep, values, strict=True))})
        for repeat in range(1, repeats + 1):
            settings = run.settings()
            rows.append(
                {
                    **settings,
                    "run": run.name if repeat == 1 else f"{run.name}_r{repeat}",
                    "experiments": "grid",
                    "repeat": repeat,
                    "status": "ok",
                    "time_train": seconds(settings, repeat),
                    "test_accuracy": accuracy(settings, repeat),
                    "test_loss": 0.3,
                    "time_to_0.9": seconds(settings, repeat) / 2,
                    "wall_to_0.9": seconds(settings, repeat),
                    "epochs_to_0.9": 1.0,
                    **{column: 1.0 for column in summary.TIMED_COLUMNS if column != "time_train"},
                    "overlap_seconds": 0.0,
                }
            )
    return pd.DataFrame(rows)


def drawn(axes) -> dict:
    """{group label: its line of medians} of a dimension figure's panel."""
    return {container.get_label(): container.lines[0] for container in axes.containers}


def section(runs: pd.DataFrame, dimension: str) -> dimensions.DimensionSection:
    return next(s for s in dimensions.dimension_sections(runs) if s.dimension == dimension)


BATCH_BY_RATE = {"batch_size": [8, 32, 128], "learning_rate": [0.01, 0.1]}


def test_a_swept_dimension_is_read_with_every_other_setting_held_fixed():
    runs = runs_of(BATCH_BY_RATE, accuracy=lambda s, r: s["learning_rate"] + s["batch_size"] / 1000)
    batch = section(runs, "batch_size")
    assert [s.dimension for s in dimensions.dimension_sections(runs)] == ["learning_rate", "batch_size"]
    # One group per learning rate, each with its own three batch sizes: never merged across rates.
    groups = batch.groups.groupby("group")
    assert sorted(groups.groups) == ["lr0.01", "lr0.1"]
    for label, group in groups:
        assert group["learning_rate"].nunique() == 1
        assert list(group["value"]) == ["8", "32", "128"]
        expected = group["learning_rate"].iloc[0] + group["batch_size"] / 1000
        assert np.allclose(group["test_accuracy_median"], expected), label
    assert batch.unpaired == 0


def test_settings_that_differ_in_two_dimensions_are_not_compared():
    """mlp b8 and cnn b32: model and batch size change together, so neither section has a group."""
    runs = pd.concat(
        [runs_of({"batch_size": [8]}), runs_of({"model": ["cnn"], "batch_size": [32]})], ignore_index=True
    )
    for dimension in ("model", "batch_size"):
        each = section(runs, dimension)
        figure, why = dimensions.dimension_figure(each)
        assert figure is None and "No two settings differ in" in why
        assert each.ratios.empty and each.unpaired == 2
        assert dimension_headline(each) is None


def test_the_figure_draws_one_line_per_group_through_its_own_settings_medians():
    runs = runs_of(BATCH_BY_RATE, accuracy=lambda s, r: s["learning_rate"] + s["batch_size"] / 1000)
    figure, caption = dimensions.dimension_figure(section(runs, "batch_size"))
    accuracy = figure.axes[-1]
    lines = drawn(accuracy)
    assert sorted(lines) == ["lr0.01", "lr0.1"]
    assert np.allclose(lines["lr0.1"].get_ydata(), [0.108, 0.132, 0.228])
    assert "all 2 groups" in caption
    plt.close(figure)


def test_labels_name_every_varying_setting_and_only_those():
    runs = runs_of(BATCH_BY_RATE, repeats=1)
    labels = setting_label(runs)
    assert labels.is_unique
    assert list(labels[:2]) == ["lr0.01 b8", "lr0.1 b8"]
    assert not labels.str.contains("tensorflow|adam|mlp|e1").any()
    backends = runs_of({"backend": ["tensorflow", "jax"], "learning_rate": [0.01, 0.1]}, repeats=1)
    assert list(setting_label(backends)) == [
        "lr0.01 tensorflow",
        "lr0.1 tensorflow",
        "lr0.01 jax",
        "lr0.1 jax",
    ]
    # A grid of one setting still says what ran.
    assert list(setting_label(runs_of({"batch_size": [8]}, repeats=1))) == [
        "mlp64-linear adam b8 e1 tensorflow"
    ]


def test_twenty_settings_that_differ_only_in_learning_rate_read_differently():
    rates = [round(0.001 * k, 3) for k in range(1, 21)]
    runs = runs_of({"batch_size": [8], "learning_rate": rates}, repeats=1)
    labels = plots.setting_label(summary.settings_table(runs))
    assert labels.is_unique and labels.str.startswith("lr").all()


def test_threads_give_speed_up_and_parallel_efficiency_with_the_bootstrap_interval():
    times = {1: [10.0, 10.2, 9.9], 2: [6.0, 6.1, 5.9], 4: [4.0, 4.1, 3.8]}
    runs = runs_of({"threads": [1, 2, 4]}, seconds=lambda s, r: times[s["threads"]][r - 1])
    ratios = section(runs, "threads").ratios.set_index("threads")
    assert ratios.loc["1", "train ratio"] == 1.0 and ratios.loc["1", "95% interval"] == "reference"
    assert ratios.loc["2", "speed-up"] == pytest.approx(10.0 / 6.0)
    assert ratios.loc["4", "efficiency"] == pytest.approx(10.0 / 4.0 / 4)
    low, high = compare.ratio_interval(np.array(times[4]), np.array(times[1]), 0.95)
    assert ratios.loc["4", "95% interval"] == f"{low:.2f}-{high:.2f}"
    headline = dimension_headline(section(runs, "threads"))
    assert headline.startswith("**threads** against 1: 2 threads 1.67x speed-up (efficiency 83%)")


def test_precision_gives_the_time_ratio_and_the_accuracy_difference():
    runs = runs_of(
        {"model": ["cnn"], "precision": ["float32", "mixed_bfloat16"]},
        seconds=lambda s, r: (16.0 if s["precision"] == "float32" else 10.0) + 0.1 * r,
        accuracy=lambda s, r: 0.990 if s["precision"] == "float32" else 0.989,
    )
    ratios = section(runs, "precision").ratios.set_index("precision")
    assert ratios.loc["mixed_bfloat16", "train ratio"] == pytest.approx(10.2 / 16.2)
    assert ratios.loc["mixed_bfloat16", "accuracy change (pt)"] == pytest.approx(-0.1)
    assert dimension_headline(section(runs, "precision")) == (
        "**precision** against float32: mixed_bfloat16 1.59x faster, accuracy -0.10 pt "
        "(train phase without compilation, with cnn adam b32 e1 tensorflow fixed)."
    )


def test_backends_are_one_case_of_a_dimension():
    runs = runs_of(
        {"backend": ["torch", "tensorflow", "jax"], "batch_size": [32, 128]},
        seconds=lambda s, r: {"tensorflow": 2.0, "jax": 1.0, "torch": 8.0}[s["backend"]] + 0.01 * r,
    )
    ratios = section(runs, "backend").ratios
    assert list(ratios["backend"][:3]) == ["tensorflow", "jax", "torch"]  # the reference first
    assert set(ratios["vs"]) == {"tensorflow"} and set(ratios["setting"]) == {"b32", "b128"}
    jax = ratios[ratios["backend"] == "jax"]["train ratio"]
    assert np.allclose(jax, 1.02 / 2.02)  # the medians: repeat 2
    assert "jax 1.98x faster" in dimension_headline(section(runs, "backend"))


def test_spreads_are_those_of_one_settings_repeats():
    """Two backends with three repeats each: the batch-size view's spread of the tensorflow setting
    is its own repeats' quartiles, not those of the pooled backends."""
    seconds = {"tensorflow": [1.0, 2.0, 4.0], "jax": [10.0, 20.0, 40.0]}
    runs = runs_of(
        {"backend": ["tensorflow", "jax"], "batch_size": [32, 64]},
        seconds=lambda s, r: seconds[s["backend"]][r - 1] * s["batch_size"] / 32,
    )
    batch = section(runs, "batch_size")
    tensorflow = batch.groups[(batch.groups["group"] == "tensorflow") & (batch.groups["value"] == "32")].iloc[
        0
    ]
    repeats = pd.Series(seconds["tensorflow"])
    assert (tensorflow["time_train_q1"], tensorflow["time_train_q3"]) == (
        repeats.quantile(0.25),
        repeats.quantile(0.75),
    )
    assert tensorflow["time_train_median"] == 2.0
    figure, _ = dimensions.dimension_figure(batch)
    train = figure.axes[0]
    bars = [c for c in train.collections if len(c.get_segments()) == 2]
    spans = sorted(tuple(np.round(segment[:, 1], 6)) for bar in bars for segment in bar.get_segments())
    assert (1.5, 3.0) in spans and (15.0, 30.0) in spans  # each setting's own quartiles
    assert not any(low < 3.0 < 15.0 < high for low, high in spans)  # no bar spans both backends
    plt.close(figure)


@pytest.fixture(scope="module")
def thousand():
    """1000 settings: 10 batch sizes, 10 learning rates, 10 seeds, one repeat each."""
    sweep = {
        "batch_size": [2**k for k in range(1, 11)],
        "learning_rate": [round(0.001 * 2**k, 4) for k in range(10)],
        "seed": list(range(10)),
    }
    runs = runs_of(sweep, repeats=1, accuracy=lambda s, r: 0.9 + s["seed"] / 1000 - s["batch_size"] / 1e5)
    # settings.csv of one repeat each: every statistic is the repeat's value (summary.settings_table
    # would take half a minute here).
    statistics = {
        f"{column}_{name}": runs[column]
        for column in summary.TIMED_COLUMNS
        for name in ("median", "q1", "q3")
    }
    settings = runs.assign(n=1, runs=runs["run"], test_accuracy_median=runs["test_accuracy"], **statistics)
    return runs, settings


def test_figures_stay_bounded_at_a_thousand_settings(thousand):
    runs, settings = thousand
    assert len(settings) == 1000
    for each in dimensions.dimension_sections(runs):
        figure, caption = dimensions.dimension_figure(each)
        assert figure.get_size_inches()[1] <= dimensions.MAX_HEIGHT
        for axes in figure.axes:
            assert 0 < len(drawn(axes)) <= dimensions.MOST_GROUPS
        assert f"8 of {each.groups['group_id'].nunique()} groups" in caption
        plt.close(figure)
    shown, which = plots.bounded_settings(settings)
    assert len(shown) == figures.MOST_ROWS and "of 1000 settings" in which
    for figure in (plots.phase_breakdown(shown, grid=settings), plots.seed_spread_plot(runs)):
        width, height = figure.get_size_inches()
        assert height <= figures.MAX_HEIGHT and height * figure.dpi <= 1800
        assert len(figure.axes[0].get_yticklabels()) <= figures.MOST_ROWS
        plt.close(figure)


def test_key_results_stay_short_at_a_thousand_settings(thousand):
    runs, settings = thousand
    flags = {"noisy": settings["seed"] % 2 == 0, "overlapped": settings["seed"] == 3}
    settings = settings.assign(**flags, identical_results=settings["seed"] != 5)
    sections = dimensions.dimension_sections(runs)
    lines = plots.key_results(settings, sections)
    untrusted = [line for line in lines if line.startswith("**Not to be trusted**")]
    differ = [line for line in lines if line.startswith("**Repeats differ**")]
    assert len(untrusted) == len(differ) == MOST_NAMED + 1
    assert "595 more settings, 500 noisy and 100 measured with overlap" in untrusted[-1]
    assert "95 more settings" in differ[-1]
    assert len(lines) <= 30


PRECISIONS = {"batch_size": [32, 128], "precision": ["float32", "mixed_bfloat16"]}
ACCURACY = {"float32": 0.990, "mixed_bfloat16": 0.989}


def test_a_group_without_test_accuracy_leaves_the_others_accuracy_change_in_the_headline():
    """The finding: one group's NaN accuracy made the headline read "accuracy +nan pt"."""
    runs = runs_of(
        PRECISIONS,
        seconds=lambda s, r: (16.0 if s["precision"] == "float32" else 10.0) + 0.1 * r,
        accuracy=lambda s, r: np.nan if s["batch_size"] == 128 else ACCURACY[s["precision"]],
    )
    headline = dimension_headline(section(runs, "precision"))
    assert "nan" not in headline and "mixed_bfloat16 1.59x faster, accuracy -0.10 pt" in headline
    no_accuracy = runs.assign(test_accuracy=np.nan)
    assert "accuracy change unknown" in dimension_headline(section(no_accuracy, "precision"))


def test_a_sweep_whose_other_values_all_failed_is_not_said_to_be_fixed():
    """The finding: every run of one precision failed, and the report said every setting was fixed."""
    runs = runs_of({"precision": ["float32", "mixed_bfloat16"]})
    runs.loc[runs["precision"] == "mixed_bfloat16", "status"] = "failed"
    sections = dimensions.dimension_sections(runs)
    assert sections == []
    note = dimensions.without_a_section(runs, sections)
    assert note.startswith("No run of precision mixed_bfloat16 ended ok") and "fixed" not in note
    # Beside a dimension that has its section, the lost one is named all the same.
    runs = runs_of(PRECISIONS)
    runs.loc[runs["precision"] == "mixed_bfloat16", "status"] = "failed"
    sections = dimensions.dimension_sections(runs)
    assert [s.dimension for s in sections] == ["batch_size"]
    assert dimensions.without_a_section(runs, sections).startswith("No run of precision mixed_bfloat16")
    finished = runs_of(PRECISIONS)
    assert dimensions.without_a_section(finished, dimensions.dimension_sections(finished)) is None
    fixed = runs_of({"batch_size": [32]})
    assert dimensions.without_a_section(fixed, []) == (
        "Every setting of this grid is fixed: there is no swept setting to compare."
    )


def test_diverged_repeats_count_as_never_reaching_a_target_in_the_sections_too():
    runs = runs_of({"batch_size": [32, 128]})
    diverged = (runs["batch_size"] == 32) & (runs["repeat"] > 1)
    runs.loc[diverged, ["status", "time_train", "time_to_0.9"]] = ["diverged", 0.1, np.nan]
    points = dimensions.setting_points(runs).set_index("batch_size")
    assert points.loc[32, "n"] == 1 and pd.isna(points.loc[32, "time_to_0.9_median"])  # 1 of 3 reached
    assert points.loc[32, "time_train_median"] == pytest.approx(10.0 / 32 + 0.01)  # the finished one's
    assert points.loc[128, "n"] == 3 and points.loc[128, "time_to_0.9_median"] > 0
