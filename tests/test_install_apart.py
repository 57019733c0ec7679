"""The workflow runs however a Python user installs it (tests/installs.py makes each install):
run.sh (the rest of the suite runs that way), `pip install -e .` in pip's default editable mode,
`pip install .`, and a Snakemake installed apart from the checkout with the dependencies beside
it. Snakemake's plugin discovery sees the console's logger plugin in only some of these; the
Snakefile puts the console in place in all of them, and says so in one line where it cannot.
See tests/test_install.py."""

import subprocess

import pytest
from installs import assert_mnistbench_console, checkout, environment, pip_install, run_dot_test

pytestmark = pytest.mark.slow


def test_pip_install_runs_the_test_grid(tmp_path):
    folder = checkout(tmp_path / "checkout")
    python = environment(tmp_path / "venv")
    pip_install(python, str(folder))
    installed = subprocess.run(
        [python, "-P", "-c", "import mnistbench; print(mnistbench.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "site-packages" in installed.stdout  # a real install, not the folder
    assert_mnistbench_console(run_dot_test(python, folder), folder)


def test_a_snakemake_installed_apart_runs_the_test_grid(tmp_path):
    folder = checkout(tmp_path / "checkout")
    python = environment(tmp_path / "venv")  # Snakemake and the dependencies, no mnistbench
    missing = subprocess.run([python, "-P", "-c", "import mnistbench"], capture_output=True, cwd=tmp_path)
    assert missing.returncode != 0
    assert_mnistbench_console(run_dot_test(python, folder), folder)
