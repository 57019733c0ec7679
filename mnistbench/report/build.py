"""Executes a parameterized notebook with papermill and renders it to one self-contained HTML file."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter
from traitlets.config import Config

from mnistbench.files import atomic_write

log = logging.getLogger("mnistbench")

# The lab template links require.js, MathJax and Mermaid from a CDN; the report must open
# offline and needs none of them (no widgets, formulas or diagrams), so those scripts go.
# The interactive tables' own scripts (report_tables: inline, no src) stay: the Mermaid module
# is matched by the template's class name, not by the word, which a table's data may hold.
_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>\s*', re.I)
_MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MERMAID_MODULE = re.compile(
    r'<script type="module">(?:(?!</script>).)*?\.jp-Mermaid(?:(?!</script>).)*</script>', re.S
)


def execute(template: str, notebook_out: str, parameters: dict) -> None:
    # The "python3" kernel runs the first `python` on PATH: make it this environment's.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ log out of the page
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    # The kernel talks over Unix sockets in a private folder, not over localhost TCP: no port can
    # clash with another job's kernel on the node, no other user can reach the sockets, and ipykernel
    # has no reason to warn that the traffic is unencrypted. A short folder (the system's temporary
    # one) keeps the socket paths under the 107-byte limit of a Unix socket's name. Passed as config,
    # not as a ready kernel manager, so that nbclient still owns the kernel and shuts it down.
    with tempfile.TemporaryDirectory(prefix="mnistbench-kernel-") as sockets:
        kernel = Config()
        kernel.KernelManager.transport = "ipc"
        kernel.KernelManager.connection_file = str(Path(sockets) / "kernel.json")
        atomic_write(
            notebook_out,
            lambda temporary: papermill.execute_notebook(
                template,
                temporary,
                parameters=parameters,
                kernel_name="python3",
                language="python",
                progress_bar=False,
                cwd=os.getcwd(),
                config=kernel,
            ),
        )


def to_html(notebook_path: str, html_out: str, show_code: bool = False) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=not show_code, embed_images=True)
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    html, _ = exporter.from_notebook_node(notebook)
    for pattern in (_MATHJAX_BLOCK, _MERMAID_MODULE, _EXTERNAL_SCRIPT):
        html = pattern.sub("", html)
    atomic_write(html_out, lambda temporary: Path(temporary).write_text(html))


def build(template: str, notebook_out: str, html_out: str, parameters: dict, show_code: bool = False) -> None:
    try:
        execute(template, notebook_out, parameters)
    except papermill.PapermillExecutionError as error:
        log.error("%s: cell %d raised %s: %s", template, error.exec_count, error.ename, error.evalue)
        raise
    to_html(notebook_out, html_out, show_code)
