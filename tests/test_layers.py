"""The package's layers, as each subpackage's docstring states them: data at the bottom, then
measures, training, results and report. The results and report sides import nothing of the
training side and need no framework, so that summaries and reports build on any machine."""

import ast
import json
import subprocess
import sys

from conftest import REPO

# What each side must never import (mnistbench/<side>/__init__.py says why).
FORBIDDEN = {
    "data": {"training", "measures", "results", "report"},
    "measures": {"training", "results", "report"},
    "training": {"results", "report"},
    "results": {"training", "report"},
    "report": {"training"},
}
FRAMEWORKS = ("tensorflow", "keras", "jax", "jaxlib", "torch")


def source_of(path) -> str:
    """A module's source, or a notebook's code cells (its magics left out)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return "\n".join(line for cell in code for line in cell.splitlines() if not line.startswith(("%", "!")))


def mnistbench_imports(path):
    """The mnistbench modules a file imports, wherever in it (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(source_of(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mnistbench"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mnistbench")}
    return found


def test_each_side_imports_none_of_the_sides_its_docstring_forbids():
    crossings = []
    # The report's notebooks are the report side too.
    notebooks = {"report": [REPO / "notebooks/report.ipynb", REPO / "notebooks/merged.ipynb"]}
    for side, forbidden in FORBIDDEN.items():
        for path in [*sorted((REPO / "mnistbench" / side).rglob("*.py")), *notebooks.get(side, [])]:
            for module in sorted(mnistbench_imports(path)):
                parts = module.split(".")
                if len(parts) > 1 and parts[1] in forbidden:
                    crossings.append(f"{path.relative_to(REPO)} imports {module}")
    assert crossings == []
    for side in FORBIDDEN:  # and each says so
        assert "May import" in (REPO / "mnistbench" / side / "__init__.py").read_text()


def test_the_results_and_report_sides_import_with_every_framework_blocked():
    code = f"""
import importlib, importlib.abc, pkgutil, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {FRAMEWORKS!r}:
            raise ImportError(f"{{name}} is blocked")
        return None

sys.meta_path.insert(0, Blocked())
import mnistbench.results, mnistbench.report
imported = []
for package in (mnistbench.results, mnistbench.report):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        imported.append(module.name)
loaded = [name for name in sys.modules if name.split(".")[0] in {FRAMEWORKS!r}]
assert not loaded, loaded
print(len(imported))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) >= 15  # every module of both sides, plots included
