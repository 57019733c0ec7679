"""The merged report of five machines built by the real workflow and opened in a real headless
browser (Debian's chromium), as tests/test_report.py opens the report.

Training is kept to one small real result set: the two other real sets are copies of its summary
tables (runs.csv, machine.csv: all that a merge reads) given other host facts and scaled times, as
if the same grid had run on a GPU node and a laptop; two more are generated (tests/fake_results.py,
the real aggregation) with machine facts of their own."""

import re
from pathlib import Path

import pandas as pd
import pytest
from browser import HAS_CHROMIUM, offline_page
from conftest import snakemake
from fake_results import make_result_set
from test_merge import derived_set


def copy_as_machine(
    results: Path, folder: Path, factor: float, hostname: str, cpu: str, cores: int, batches=None
) -> Path:
    """This set's summary tables as another machine's: its own host, CPU and cores, times scaled,
    batch sizes renamed by `batches` (a setting that only this machine ran)."""
    (folder / "summary").mkdir(parents=True)
    runs = pd.read_csv(results / "summary/runs.csv")
    timed = ["time_train", "time_epoch_steady", "time_job", *(c for c in runs if c.startswith("time_to_"))]
    runs[timed] *= factor
    runs["batch_size"] = runs["batch_size"].replace(batches or {})
    runs.assign(host=hostname, cpu_model=cpu).to_csv(folder / "summary/runs.csv", index=False)
    machine = pd.read_csv(results / "summary/machine.csv").head(1)
    machine.assign(hostname=hostname, cpu_model=cpu, cores_logical=cores).to_csv(
        folder / "summary/machine.csv", index=False
    )
    return folder


@pytest.fixture(scope="module")
def merged(tmp_path_factory, formats):
    """One real set trained here (softmax at two batch sizes, two repeats: four short runs), two
    real copies and two generated sets, merged by the workflow with this set as the reference."""
    root = tmp_path_factory.mktemp("machines")
    work = root / "workstation"
    work.mkdir()
    config = {
        "defaults": {"epochs": 1},
        "experiments": {"softmax": {"model": ["softmax"], "batch_size": [32, 64], "repeats": 2}},
        "data": {"mnist": {"local_path": str(formats["npz"])}},
    }
    snakemake(work, config, "--cores", "2", "results/summary/runs.csv")
    results = work / "results"
    generated = make_result_set(root / "generated", 12, repeats=2)
    sets = {
        "workstation": "results",
        "gpu-node": str(copy_as_machine(results, root / "gpu-node", 0.4, "gpu01", "Xeon Gold 6338", 64)),
        "laptop": str(copy_as_machine(results, root / "laptop", 1.8, "lap", "Intel i5-8250U", 8, {64: 16})),
        "cluster-a": str(generated),
        "cluster-b": str(derived_set(generated, root / "cluster-b", 0.5, "AMD EPYC 9654", 96)),
    }
    snakemake(work, {**config, "merge": {"sets": sets}}, "--cores", "2", "results/merged.html")
    return work, sets


@pytest.mark.slow
def test_merged_tables_carry_the_machine_and_its_facts_on_every_row(merged):
    work, sets = merged
    folder = work / "results/summary/merged"
    runs, settings = pd.read_csv(folder / "runs.csv"), pd.read_csv(folder / "settings.csv")
    assert set(runs["machine"]) == set(sets) == set(settings["machine"])
    assert runs["cpu_model"].notna().all() and settings["cores_logical"].notna().all()
    gpu = settings[(settings["machine"] == "gpu-node")]
    assert len(gpu) == 2 and (gpu["vs"] == "workstation").all()
    assert gpu["time_train_ratio"].to_numpy() == pytest.approx(0.4)
    # Settings of the generated sets that the workstation did not run: compared with cluster-a.
    cluster_b = settings[settings["machine"] == "cluster-b"]
    assert "cluster-a" in set(cluster_b["vs"]) and set(cluster_b["vs"]) <= {"cluster-a", "workstation"}
    alone = settings[settings["verdict"] == "only on this machine"]
    assert set(alone.loc[alone["machine"] == "laptop", "batch_size"]) == {16}


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian's chromium is not installed")
def test_merged_report_shows_the_machine_section_machines_key_results_and_ratios(merged):
    work, _ = merged
    with offline_page(work / "results/merged.html") as (page, outside):
        search = page.locator('input[type="search"][aria-controls="ratios-machine"]')
        search.wait_for(state="visible", timeout=30_000)
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        text = page.inner_text("body")
        differs = page.eval_on_selector_all("table.machines tr.differs", "els => els.map(e => e.innerText)")
        columns = page.eval_on_selector_all("table.machines th", "els => els.map(e => e.innerText)")
        missing = page.eval_on_selector_all(
            "nav a", "els => els.filter(e => !document.getElementById(e.hash.slice(1))).map(e => e.hash)"
        )
        search.fill("gpu-node")
        page.wait_for_function(
            "document.querySelector('#ratios-machine_info').innerText.includes('filtered')"
        )
        filtered = page.eval_on_selector_all("#ratios-machine tbody tr", "els => els.map(e => e.innerText)")

    assert outside == [] and missing == []
    assert len(images) == 1 and all(images)
    for heading in ("Key results", "Machines and software", "Dimension: machine", "Run by one machine only"):
        assert heading in text, heading
    assert columns == ["attribute", "workstation", "gpu-node", "laptop", "cluster-a", "cluster-b"]
    assert any(row.startswith("cpu_model") for row in differs) and any("Xeon Gold 6338" in r for r in differs)
    assert "gpu-node against workstation: train phase 2.50x faster" in text
    assert "laptop against workstation: train phase 1.80x slower" in text
    assert "Run by one machine only: " in text and "laptop 1" in text
    assert "Fastest machine" in text
    # Per-setting ratios with their intervals: the gpu node's two settings, 0.4 times the time.
    assert len(filtered) == 2 and all(re.search(r"\t0\.4\t\d\.\d\d-\d\.\d\d\t", row) for row in filtered)
    assert all("gpu-node" in row and "workstation" in row for row in filtered)
