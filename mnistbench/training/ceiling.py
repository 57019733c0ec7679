"""What a backend can do on a device: the ceiling that a run's achieved FLOP/s is read against.

Per device, backend, precision and threads that the grid trains, one small job (rule ceiling)
measures in a process of its own, set up as a training process is (CPUs pinned, thread pools
sized, GPUs hidden for a CPU run):
- peak FLOP/s: the product of two square matrices (keras.ops.matmul) in the precision's compute
  dtype, 2 n^3 FLOPs, n doubled while a product takes under an eighth of a timing;
- copy bandwidth: keras.ops.negative of a large float32 array, which reads and writes every
  byte (2 x its size, as STREAM's copy counts).
Each the median of REPEATS timings of PROBE_SECONDS / REPEATS (as many calls as fill one),
after a warm-up call (compilation, autotuning). The job never
fails: where it cannot measure, its file says why, and the report shows no ceiling.
"""

from __future__ import annotations

import logging
import math
import platform
import socket
import statistics
import time
import traceback
from datetime import UTC, datetime

import numpy as np

from mnistbench.files import write_json
from mnistbench.records import CEILING_KEYS as KEYS
from mnistbench.training import devices

log = logging.getLogger("mnistbench")

PROBE_SECONDS = 1.0  # per probe, its timed repeats together (a warm-up and sizing besides)
REPEATS = 5
COMPUTE_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
SMALLEST_N = 128
LARGEST_N = {"cpu": 4096, "gpu": 16384}  # 3 matrices: 200 MB, or 3 GB, at float32
COPY_BYTES = {"cpu": 2**26, "gpu": 2**30}  # far beyond the caches: memory, not cache, bandwidth


def ceiling_name(device: str, backend: str, precision: str, threads: int) -> str:
    """The stem of a ceiling's file: "cpu_tensorflow_float32_t1"."""
    return f"{device}_{backend}_{precision}_t{int(threads)}"


def ceilings_of(runs) -> list[str]:
    """The ceiling names that a grid's runs (grid.Run) need, each once, sorted."""
    return sorted({ceiling_name(run.device, run.backend, run.precision, run.threads) for run in runs})


def _wait(keras, tensor) -> None:
    """Block until `tensor` is computed: reading one element back waits for its producer on every
    backend (JAX and a GPU run asynchronously)."""
    keras.ops.convert_to_numpy(tensor[(0,) * len(tensor.shape)])


def _time_call(keras, call, calls: int = 1) -> float:
    """Seconds per call of `call()`, waiting for each result."""
    start = time.perf_counter()
    for _ in range(calls):
        _wait(keras, call())
    return (time.perf_counter() - start) / calls


def _median_seconds(keras, call, once: float, per_repeat_s: float, repeats: int) -> tuple[float, int]:
    """Median seconds of one call (which took about `once`) over `repeats` timings of about
    `per_repeat_s` each (several calls per timing where one call is shorter), and the calls per
    timing."""
    calls = max(1, math.ceil(per_repeat_s / max(once, 1e-9)))
    return statistics.median(_time_call(keras, call, calls) for _ in range(repeats)), calls


def matmul_probe(
    keras, device: str, dtype: str, seconds: float = PROBE_SECONDS, repeats: int = REPEATS
) -> dict:
    """Peak FLOP/s of a square matrix product in `dtype`: n doubles (8x the work) while a product
    takes under an eighth of a timing, so that no size takes much longer than asked."""
    per_repeat = seconds / repeats
    rng = np.random.default_rng(0)
    n = SMALLEST_N
    while True:
        values = rng.random((2, n, n), dtype=np.float32)
        a, b = (keras.ops.convert_to_tensor(v, dtype=dtype) for v in values)
        product = lambda a=a, b=b: keras.ops.matmul(a, b)  # noqa: E731
        _time_call(keras, product)  # warm-up: compilation, autotuning
        once = _time_call(keras, product)
        if n >= LARGEST_N[device] or once * 8 > per_repeat:
            break
        n *= 2
    median, calls = _median_seconds(keras, product, once, per_repeat, repeats)
    return {
        "matmul_n": n,
        "matmul_calls": calls,
        "matmul_seconds": median,
        "matmul_flops_per_s": 2 * n**3 / median,
    }


def copy_probe(keras, device: str, seconds: float = PROBE_SECONDS, repeats: int = REPEATS) -> dict:
    """Bytes per second read and written by an element-wise pass over a large float32 array."""
    size = COPY_BYTES[device]
    x = keras.ops.ones((size // 4,), dtype="float32")
    negate = lambda: keras.ops.negative(x)  # noqa: E731
    _time_call(keras, negate)  # warm-up
    once = _time_call(keras, negate)
    median, calls = _median_seconds(keras, negate, once, seconds / repeats, repeats)
    return {
        "copy_bytes": size,
        "copy_calls": calls,
        "copy_seconds": median,
        "copy_bytes_per_s": 2 * size / median,
    }


def measure(keras, device: str, precision: str, seconds: float = PROBE_SECONDS) -> dict:
    """Both probes on the backend that `keras` runs on (started by the caller)."""
    if device == "gpu":
        devices.require_gpu(keras)
    return {
        **matmul_probe(keras, device, COMPUTE_DTYPE[precision], seconds),
        **copy_probe(keras, device, seconds),
    }


def run_probe(
    device: str,
    backend: str,
    precision: str,
    threads: int,
    output: str,
    threads_given: int,
    pin_cpus: bool = True,
    seconds: float = PROBE_SECONDS,
) -> dict:
    """The ceiling job: a process set up as a training process of these settings (on the
    `threads_given` that the job got) measures and writes `output`; any failure is written there
    too, as one line."""
    from mnistbench.training.runtime import start_keras, start_training_process

    given = int(threads_given)
    record = {
        **dict(zip(KEYS, (device, backend, precision, int(threads)), strict=True)),
        "threads_given": given,
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "probe_seconds": seconds,
        "repeats": REPEATS,
    }
    try:
        if device == "cpu":
            devices.hide_gpus(backend)
        record.update(start_training_process(backend, given, pin_cpus))
        keras = start_keras(backend, given)
        record.update(devices.cpu_facts(), gpu_name=devices.gpu_facts(keras)["gpu_name"])
        record.update(measure(keras, device, precision, seconds))
        log.info(
            "ceiling %s: %.3g FLOP/s, %.3g GB/s",
            ceiling_name(device, backend, precision, threads),
            record["matmul_flops_per_s"],
            record["copy_bytes_per_s"] / 1e9,
        )
    except Exception as error:  # the report says why; the grid's report must still be built
        log.error("ceiling not measured: %s\n%s", error, traceback.format_exc())
        record["error"] = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
    write_json(output, record)
    return record
