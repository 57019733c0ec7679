"""The checks the README promises are kept clean: ruff (lint and format), snakefmt, snakemake --lint."""

import subprocess
import sys

import pytest
from conftest import REPO

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "snakefmt": [sys.executable, "-m", "snakefmt", "--check", "."],
    "snakemake --lint": [sys.executable, "-m", "snakemake", "--lint"],
}


@pytest.mark.parametrize("name", CHECKS)
def test_the_code_is_clean(name):
    result = subprocess.run(CHECKS[name], cwd=REPO, capture_output=True, text=True)
    output = (result.stdout + result.stderr)[-3000:]
    assert result.returncode == 0, f"{name} is not clean:\n{output}"
    if name == "snakemake --lint":  # its exit status is 0 even when it lists lints
        assert "Congratulations" in output, output
