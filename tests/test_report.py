"""The report built by the real workflow, opened in a real headless browser (Debian's chromium),
and regenerated after edits with only the jobs that the edit touches."""

import json
import re

import pandas as pd
import pytest
from browser import HAS_CHROMIUM, offline_page
from conftest import REPO, copy_workflow, damage_prepared_data, snakemake

ARTIFACTS = REPO / "test-artifacts"
FAILING = "fashion_mnist_mlp8-linear_adam-lrdefault_b32_e1_scale_s0_tf"


@pytest.fixture(scope="module")
def built(tmp_path_factory, formats):
    """A small grid: two seeds of one setting, a second model, a diverging run, and a run that
    fails because its prepared data is damaged."""
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = {
        "defaults": {"batch_size": 32, "hidden_units": 8, "epochs": 2},
        "experiments": {
            "seeds": {"model": ["softmax"], "seed": [0, 1]},
            "mlp": [{"model": "mlp", "epochs": 1}],
            "backends": [{"model": "softmax", "seed": 0, "backend": "jax"}],
            "broken": [{"model": "mlp", "optimizer": "sgd", "learning_rate": 1000, "normalize": "none"}],
            "damaged": [{"model": "mlp", "epochs": 1, "dataset": "fashion_mnist"}],
        },
        "data": {
            "mnist": {"local_path": str(formats["npz"])},
            "fashion_mnist": {"local_path": str(formats["npz"])},
        },
    }
    damaged = damage_prepared_data(work, config, "fashion_mnist", snakefile=work / "Snakefile")
    result = snakemake(work, config, "--cores", "2", check=False, snakefile=work / "Snakefile")
    return work, config, result, damaged


@pytest.mark.slow
def test_failed_run_is_reported_and_the_exit_status_says_so(built):
    work, config, result, damaged = built
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(rf"2 of 6 runs did not end ok \(.*{FAILING}: failed", output), output[-3000:]
    assert re.search(r"did not end ok \(.*-lr1000\.0_\S+: diverged", output), output[-3000:]
    # The console's closing summary, on failure too: how the runs ended, key results, the report.
    done = re.search(r"^Done in [^:]+: 4 ok, (.+) \(of 6 runs\)\.\nKey results:\n  - ", output, re.M)
    assert done and sorted(done[1].split(", ")) == ["1 diverged", "1 failed"], output[-3000:]
    assert f"Report: {(work / 'results/report.html').resolve()}" in output
    runs = pd.read_csv(work / "results/summary/runs.csv")
    statuses = dict(zip(runs["run"], runs["status"], strict=True))
    assert statuses[FAILING] == "failed"
    assert list(statuses.values()).count("diverged") == 1
    assert list(statuses.values()).count("ok") == 4
    assert "unreadable prepared data" in runs.set_index("run").loc[FAILING, "error"]
    assert (work / "results/report.html").exists()
    # The next call retries the failed run (its data repaired, it now succeeds), keeps the others.
    kept = {p: p.stat().st_mtime_ns for p in (work / "results/runs").glob("*/metrics.json")}
    assert len(kept) == 5  # all but the failed run
    damaged.unlink()
    plan = planned_jobs(work, config)
    assert {"train", "evaluate", "aggregate", "report"} <= plan
    again = snakemake(work, config, "--cores", "2", snakefile=work / "Snakefile", check=False)
    assert again.returncode == 0, again.stdout[-2000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert pd.read_csv(work / "results/summary/runs.csv")["status"].value_counts().to_dict() == {
        "ok": 5,
        "diverged": 1,
    }


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")
def test_report_opens_offline_with_every_image_and_its_tables_filter_as_one_types(built):
    work, _, _, _ = built
    runs = pd.read_csv(work / "results/summary/runs.csv")
    diverged = int(runs["status"].eq("diverged").sum())
    assert 0 < diverged < len(runs) <= 25  # one page of the runs table
    with offline_page(work / "results/report.html") as (page, outside):
        # DataTables (embedded by itables) builds the table's controls once its module has loaded.
        search = page.locator('input[type="search"][aria-controls="runs"]')
        search.wait_for(state="visible", timeout=30_000)
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        rows = page.eval_on_selector_all("#runs tbody tr", "els => els.map(e => e.innerText)")
        text = page.inner_text("body")
        # Every entry of the table of contents leads somewhere on the page.
        missing = page.eval_on_selector_all(
            "nav a", "els => els.filter(e => !document.getElementById(e.hash.slice(1))).map(e => e.hash)"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        search.fill("diverged")
        page.wait_for_function("document.querySelector('#runs_info').innerText.includes('filtered')")
        filtered = page.eval_on_selector_all("#runs tbody tr", "els => els.map(e => e.innerText)")

    assert outside == []
    assert len(images) >= 6 and all(images)
    assert len(rows) == len(runs) and missing == []
    assert len(filtered) == diverged and all("diverged" in row for row in filtered), filtered
    assert FAILING in text and "failed" in text and "diverged" in text
    for heading in (
        "What ran",
        "The seed documents, reproduced",
        "Dimension: model",
        "Time to accuracy",
        "Fastest to",
        "All runs",
        "Pareto front",
    ):
        assert heading in text, heading
    assert "import pandas" not in text  # no code cells by default


def planned_jobs(work, config):
    plan = snakemake(work, config, "-n", "--quiet", "rules", snakefile=work / "Snakefile").stdout
    return set(re.findall(r"^(\w+)\s+\d+$", plan, re.M)) - {"total", "job"}


@pytest.mark.slow
def test_editing_the_notebook_or_plotting_code_reruns_only_the_report(built):
    work, config, _, _ = built
    config = {
        **config,
        "experiments": {k: v for k, v in config["experiments"].items() if k not in ("broken", "damaged")},
    }
    del config["experiments"]["mlp"]
    snakemake(work, config, "--cores", "2", snakefile=work / "Snakefile")
    assert planned_jobs(work, config) <= {"all"}

    notebook = work / "notebooks/report.ipynb"
    notebook.write_text(notebook.read_text().replace("# mnistbench report", "# mnistbench report (edited)"))
    assert planned_jobs(work, config) == {"report", "all"}
    snakemake(work, config, "--cores", "1", snakefile=work / "Snakefile")
    page = (work / "results/report.html").read_text()
    assert "mnistbench report (edited)" in page
    assert "No ceiling was measured" in page  # this grid sets report: ceiling: false (conftest)

    plots = work / "mnistbench/report/plots/labels.py"
    plots.write_text(plots.read_text() + "\n# edited\n")
    assert planned_jobs(work, config) == {"report", "all"}

    summary = work / "mnistbench/results/summary.py"
    summary.write_text(summary.read_text() + "\n# edited\n")
    assert planned_jobs(work, config) == {"aggregate", "report", "all"}


@pytest.mark.slow
def test_lesson_notebook_executes_for_the_chosen_setting(built):
    work, config, _, _ = built
    config = {**config, "lesson": {"model": "mlp", "hidden_units": 8, "batch_size": 16, "epochs": 1}}
    snakemake(work, config, "--cores", "1", "lesson", snakefile=work / "Snakefile")
    text = re.sub(r"<[^>]+>", "", (work / "results/lesson/lesson.html").read_text())
    assert "test accuracy" in text and "data-load," in text and "keras.utils.set_random_seed" in text
    executed = json.loads((work / "results/lesson/lesson.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert '"hidden_units": 8' in "".join(injected[0]["source"])
