"""The workflow runs however a Python user installs it (tests/installs.py makes each install):
run.sh (the rest of the suite runs that way), `pip install -e .` in pip's default editable mode,
`pip install .`, and a Snakemake installed apart from the checkout with the dependencies beside
it. Snakemake's plugin discovery sees the console's logger plugin in only some of these; the
Snakefile puts the console in place in all of them, and says so in one line where it cannot.
Two files, so that the two test workers share them."""

import subprocess

import pytest
from installs import assert_mnistbench_console, checkout, environment, pip_install, run_dot_test

pytestmark = pytest.mark.slow


def test_pip_install_editable_in_pips_default_mode_runs_the_test_grid(tmp_path):
    folder = checkout(tmp_path / "checkout")
    python = environment(tmp_path / "venv")
    pip_install(python, "-e", str(folder))  # no editable_mode=compat: a meta path finder
    plugin = "import snakemake_logger_plugin_mnistbench as p; print(p.__file__)"
    where = subprocess.run([python, "-P", "-c", plugin], capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.strip() == str(folder / "snakemake_logger_plugin_mnistbench/__init__.py")
    assert_mnistbench_console(run_dot_test(python, folder), folder)


def test_where_the_console_cannot_be_loaded_snakemakes_own_runs_and_says_so(tmp_path):
    folder = checkout(tmp_path / "checkout")
    plugin = folder / "snakemake_logger_plugin_mnistbench/__init__.py"
    # A plugin made for another Snakemake: its interface is not there.
    made_for_another = "from snakemake_interface_logger_plugins.v0 import LogHandlerBase\n"
    plugin.write_text(made_for_another + plugin.read_text())
    python = environment(tmp_path / "venv")
    console = run_dot_test(python, folder, "resources/prepared/mnist_scale.npz")
    said = [line for line in console.splitlines() if "console could not be loaded" in line]
    assert len(said) == 1 and "ModuleNotFoundError" in said[0] and "Snakemake's own console" in said[0]
    assert "localrule prepare:" in console  # Snakemake's own console, with its per-job blocks
    assert (folder / ".test/resources/prepared/mnist_scale.npz").stat().st_size > 0
