"""The settings that snakemake really uses under each profile, read with snakemake's own parser."""

import json
import subprocess
import sys

import yaml
from conftest import REPO

EFFECTIVE = (
    "import json, sys; from snakemake.cli import parse_args; "
    "_, args = parse_args(sys.argv[1:]); print(json.dumps({k: str(v) for k, v in vars(args).items()}))"
)


def effective(*argv):
    result = subprocess.run(
        [sys.executable, "-c", EFFECTIVE, *argv], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_slurm_profile_settings_apply_despite_the_workflow_profile():
    slurm = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    args = effective("--profile", str(REPO / "profiles/slurm"), "-n")
    assert args["latency_wait"] == str(slurm["latency-wait"]) == "60"  # shared file systems
    assert args["jobs"] == str(slurm["jobs"]) and args["executor"] == "slurm"
    # No logger: the Snakefile puts the console in place (a Snakemake that cannot see the
    # plugin would refuse the call at `--logger mnistbench`); tests/test_install.py.
    assert args["logger"] == "[]"
    # Isolation is the nodes' business on a cluster: training jobs are not queued one by one.
    assert "timed_training" in args["resources"] and "100" in args["resources"]


def test_the_workflow_profile_sets_nothing_that_the_slurm_profile_sets_otherwise():
    workstation = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    slurm = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    clashes = {key for key in workstation.keys() & slurm.keys() if workstation[key] != slurm[key]}
    assert clashes == set()


def test_the_workstation_profile_applies_without_a_profile():
    args = effective("-n")
    assert args["keep_going"] == "True" and args["rerun_incomplete"] == "True"
    assert args["logger"] == "[]"  # the Snakefile puts the console in place (tests/test_install.py)
