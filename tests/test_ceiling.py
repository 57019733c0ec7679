"""The ceiling job (mnistbench/training/ceiling.py): which ceilings a grid needs, and the probes run for
real, each in a process of its own as the rule runs them (Keras picks its backend once)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from mnistbench import grid
from mnistbench.report.plots.efficiency import read_ceilings
from mnistbench.training import ceiling

PROBE = """
import sys
from mnistbench.training import ceiling
device, backend, precision, output = sys.argv[1:]
ceiling.run_probe(device, backend, precision, 1, output, 1, pin_cpus=False, seconds=0.05)
"""


def probe(tmp_path, device, backend, precision="float32"):
    output = tmp_path / f"{ceiling.ceiling_name(device, backend, precision, 1)}.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, device, backend, precision, str(output)],
        cwd=REPO,
        check=True,
        timeout=300,
    )
    return json.loads(output.read_text())


# XLA's own count of FLOPs of a square float32 matrix product per size, on JAX's CPU in a process
# of its own: what the matmul probe's FLOP/s are checked against, independently of its formula.
XLA_MATMUL = """
import json
import jax
import jax.numpy as jnp

counts = {}
for n in range(7, 13):  # n = 128 ... 4096, every size the CPU probe may pick
    square = jax.ShapeDtypeStruct((2**n, 2**n), jnp.float32)  # shapes only: nothing allocated
    costs = jax.jit(jnp.matmul).lower(square, square).compile().cost_analysis()
    counts[2**n] = (costs[0] if isinstance(costs, list) else costs)["flops"]
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def xla_matmul_flops() -> dict[int, float]:
    done = subprocess.run(
        [sys.executable, "-c", XLA_MATMUL],
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return {int(n): flops for n, flops in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def test_xla_counts_a_matrix_product_as_two_flops_per_multiply_add(xla_matmul_flops):
    # 128 x 128 outputs, each a sum of 128 products: 2,097,152 multiply-adds.
    assert xla_matmul_flops[128] == 4_194_304
    assert xla_matmul_flops[4096] == 137_438_953_472  # 4096^2 outputs x 4096 x 2


def test_one_ceiling_per_device_backend_precision_and_threads_that_the_grid_trains():
    config = {
        "defaults": {},
        "experiments": {
            "a": {"model": ["mlp", "cnn"], "batch_size": [32, 128], "backend": ["tensorflow", "jax"]},
            "b": [{"precision": "mixed_bfloat16", "threads": 2}, {"device": "gpu", "backend": "torch"}],
        },
    }
    jobs, _ = grid.expand(config)
    assert ceiling.ceilings_of(job.run for job in jobs.values()) == [
        "cpu_jax_float32_t1",
        "cpu_tensorflow_float32_t1",
        "cpu_tensorflow_mixed_bfloat16_t2",
        "gpu_torch_float32_t1",
    ]


@pytest.mark.parametrize(("backend", "precision"), [("jax", "float32"), ("torch", "mixed_bfloat16")])
def test_the_probes_measure_the_backend_on_the_cpu(tmp_path, backend, precision, xla_matmul_flops):
    record = probe(tmp_path, "cpu", backend, precision)
    assert "error" not in record, record.get("error")
    assert record["device"] == "cpu" and record["backend"] == backend and record["precision"] == precision
    assert record["threads"] == record["threads_given"] == 1
    assert record["matmul_n"] >= ceiling.SMALLEST_N and record["matmul_flops_per_s"] > 0
    # The FLOPs that the probe's rate stands for are XLA's count of the product it timed.
    done = record["matmul_flops_per_s"] * record["matmul_seconds"]
    assert done == pytest.approx(xla_matmul_flops[record["matmul_n"]], rel=1e-9)
    assert record["copy_bytes"] == ceiling.COPY_BYTES["cpu"] and record["copy_bytes_per_s"] > 0
    assert record["gpu_name"] is None and record["cpu_model"]


def test_a_gpu_ceiling_without_a_gpu_records_why_and_does_not_fail(tmp_path):
    record = probe(tmp_path, "gpu", "jax")
    if "error" not in record:
        pytest.skip("this machine has a GPU")
    assert record["error"].startswith("NoGpuError: device gpu: JAX sees no GPU")
    assert "matmul_flops_per_s" not in record


def test_unreadable_ceiling_files_become_records_with_their_error(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"device": "cpu", "matmul_flops_per_s": 1e11}))
    bad.write_text("{")
    records = read_ceilings([good, bad, tmp_path / "missing.json"])
    assert records[0]["matmul_flops_per_s"] == 1e11
    assert str(bad) in records[1]["error"] and str(tmp_path / "missing.json") in records[2]["error"]
