"""A JAX training process uses the threads it was given: XLA's CPU pool (its intra-op threads)
is sized to them, not to every CPU the process may use, also where it is not pinned."""

import subprocess
import sys

import pytest

from mnistbench.training.cpus import usable_cpus

# Starts as a training job does, unpinned, runs one compiled step, and counts XLA's pool.
COUNT_POOL = """
import os, sys
from mnistbench.training import runtime
runtime.start_training_process("jax", int(sys.argv[1]), pin_cpus=False)
import jax, jax.numpy as jnp
x = jnp.ones((256, 256))
jax.jit(lambda a: (a @ a).sum())(x).block_until_ready()
names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
print(names.count("tf_XLAEigen"))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="counts threads in /proc")
@pytest.mark.parametrize("threads", [1, len(usable_cpus()) + 1])  # both differ from the CPUs usable
def test_xla_cpu_pool_has_the_threads_asked_for(threads):
    done = subprocess.run(
        [sys.executable, "-c", COUNT_POOL, str(threads)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) == threads
