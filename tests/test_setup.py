"""The project's set-up files agree with each other."""

import re

import yaml
from conftest import REPO


def pins(lines):
    return {line.split("==")[0].lower(): line.split("==")[1] for line in lines if "==" in line}


def requirement_pins():
    lines = []
    for name in ("requirements.txt", "requirements-backends.txt"):
        lines += [line.strip() for line in (REPO / name).read_text().splitlines() if not line.startswith("#")]
    return pins(lines)


def test_conda_environment_has_the_tested_pins():
    environment = yaml.safe_load((REPO / "envs/mnistbench.yaml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert pins(pip_section) == requirement_pins()
    python = next(item for item in environment["dependencies"] if str(item).startswith("python"))
    assert python == "python=3.11"


def test_every_pin_is_in_the_constraints():
    constraints = pins((REPO / "constraints.txt").read_text().splitlines())
    for name, version in requirement_pins().items():
        assert constraints.get(name) == version, name


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(\./run\.sh.*)$", quick_start, re.M)
    assert len(commands) == 2
    ci = [
        line
        for line in (REPO / ".ci/run").read_text().splitlines()
        if line and not line.startswith(("#", "set", "cd"))
    ]
    assert ci == [commands[1].strip()]
