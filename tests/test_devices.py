"""Choosing the device and recording the hardware (mnistbench.training.devices), with the real frameworks.

On a machine without a GPU, as CI is: the GPU paths are checked to fail or stay quiet there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from conftest import REPO

from mnistbench import records
from mnistbench.training import devices

BACKENDS = ("tensorflow", "jax", "torch")
HIDING_VARIABLES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "JAX_PLATFORMS")

# Run in a process of its own per backend: Keras picks its backend once per process.
PROBE = """
import json, os, sys

backend = sys.argv[1]
os.environ["KERAS_BACKEND"] = backend
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from mnistbench.training import devices

devices.hide_gpus(backend)
import keras

if backend == "tensorflow":
    import tensorflow as tf
    visible_gpus = len(tf.config.list_physical_devices("GPU"))
elif backend == "jax":
    import jax
    visible_gpus = len([device for device in jax.devices() if device.platform != "cpu"])
else:
    import torch
    visible_gpus = torch.cuda.device_count()
try:
    error = "no error: " + devices.require_gpu(keras)
except devices.NoGpuError as raised:
    error = str(raised)
print(json.dumps({
    "environment": {name: os.environ.get(name) for name in sys.argv[2:]},
    "visible_gpus": visible_gpus,
    "error": error,
    "gpu_facts": devices.gpu_facts(keras),
    "peak_gpu_memory_mb": devices.peak_gpu_memory_mb(keras),
}))
"""


@pytest.fixture(scope="module")
def probes() -> dict[str, dict]:
    """What each installed backend reports after hide_gpus: all started at once, as each import
    of a framework costs seconds."""
    started = {
        backend: subprocess.Popen(
            [sys.executable, "-c", PROBE, backend, *HIDING_VARIABLES],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in BACKENDS
        if importlib.util.find_spec(backend) is not None
    }
    reports = {}
    for backend, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        reports[backend] = json.loads(stdout.splitlines()[-1])
    return reports


def probe(probes: dict, backend: str) -> dict:
    if backend not in probes:
        pytest.skip(f"{backend} is not installed")
    return probes[backend]


def nvml_sees_a_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        return count > 0
    except Exception:
        return False


def test_hide_gpus_sets_the_variables_the_frameworks_read(monkeypatch):
    for name in HIDING_VARIABLES:
        monkeypatch.setenv(name, "0")  # monkeypatch restores them afterwards
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as in a fresh training process
    devices.hide_gpus("jax")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert os.environ["HIP_VISIBLE_DEVICES"] == ""
    assert os.environ["JAX_PLATFORMS"] == "cpu"


def test_hide_gpus_refuses_once_the_framework_is_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    with pytest.raises(RuntimeError, match="before torch is imported"):
        devices.hide_gpus("torch")
    with pytest.raises(ValueError, match="unknown backend"):
        devices.hide_gpus("mxnet")


@pytest.mark.parametrize("backend", BACKENDS)
def test_after_hide_gpus_the_framework_sees_no_gpu(probes, backend):
    report = probe(probes, backend)
    assert report["environment"] == {
        "CUDA_VISIBLE_DEVICES": "",
        "HIP_VISIBLE_DEVICES": "",
        "JAX_PLATFORMS": "cpu",
    }
    assert report["visible_gpus"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_require_gpu_fails_in_one_line_naming_the_backend(probes, backend):
    error = probe(probes, backend)["error"]
    name = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}[backend]
    assert error.startswith(f"device gpu: {name} sees no GPU (CUDA_VISIBLE_DEVICES=''")
    assert "\n" not in error


@pytest.mark.parametrize("backend", BACKENDS)
def test_gpu_facts_are_none_without_a_gpu(probes, backend):
    report = probe(probes, backend)
    assert report["gpu_facts"] == dict.fromkeys(records.GPU_FACT_KEYS)
    assert report["peak_gpu_memory_mb"] is None


def test_cpu_facts_match_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    first = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        first.setdefault(key.strip(), value.strip())
    facts = devices.cpu_facts()
    assert set(facts) == {"cpu_model", "cpu_flags_low_precision", "cpus_allowed"}
    assert facts["cpu_model"] == first.get("model name", facts["cpu_model"])
    listed = set(first.get("flags", "").split())
    reported = facts["cpu_flags_low_precision"].split()
    assert reported == sorted(devices.LOW_PRECISION_FLAGS & listed)
    assert facts["cpus_allowed"] == len(os.sched_getaffinity(0))


def test_cudnn_versions_read_as_text():
    assert devices._cudnn_text(90100) == "9.1.0"
    assert devices._cudnn_text(8907) == "8.9.7"
    assert devices._cudnn_text(None) is None


NO_SAMPLES = {
    "gpu_utilization_mean": None,
    "gpu_utilization_max": None,
    "gpu_power_mean_w": None,
    "gpu_power_max_w": None,
    "gpu_samples": 0,
    "gpu_energy_j": None,
    "gpu_energy_from": None,
    "gpu_sampled_seconds": None,
}


@pytest.mark.parametrize("hidden", [False, True], ids=["as-is", "hidden"])
def test_gpu_sampler_starts_no_thread_without_a_gpu(monkeypatch, hidden):
    if hidden:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    elif nvml_sees_a_gpu():
        pytest.skip("this machine has an NVIDIA GPU")
    threads_before = threading.active_count()
    with devices.GpuSampler(interval_s=0.01) as sampler:
        assert threading.active_count() == threads_before
    assert sampler.summary() == NO_SAMPLES


def wait_until(condition, what: str, limit_s: float = 60.0) -> None:
    """Wait for `condition()`: a rendezvous with the sampler's thread and the GPU, whatever their
    pace; `limit_s` only keeps a broken sampler from hanging the suite."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {limit_s} s"
        time.sleep(0.005)


@pytest.mark.skipif(not nvml_sees_a_gpu(), reason="needs an NVIDIA GPU and driver")
def test_gpu_sampler_samples_the_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with devices.GpuSampler(interval_s=0.01) as sampler:
        wait_until(lambda: sampler.samples >= 2, "two samples")
        # The GPU's own energy counter (Volta and later), read here through the sampler's NVML
        # handle: wait until it has counted past the sampler's first reading.
        counter = lambda: sampler._pynvml.nvmlDeviceGetTotalEnergyConsumption(sampler._handle)  # noqa: E731
        started_mj = sampler._energy_mj[0] if sampler._energy_mj else None
        if started_mj is not None:
            wait_until(lambda: counter() > started_mj, "the energy counter to move")
            seen_mj = counter()
    summary = sampler.summary()
    assert summary["gpu_samples"] >= 2
    assert 0 <= summary["gpu_utilization_max"] <= 100
    assert summary["gpu_power_max_w"] > 0  # a GPU draws power even idle
    assert summary["gpu_sampled_seconds"] > 0
    if started_mj is not None:
        # The sampler's last reading comes after the one seen here: at least what was seen.
        assert summary["gpu_energy_from"] == "energy counter"
        assert summary["gpu_energy_j"] >= (seen_mj - started_mj) / 1000 > 0
    else:  # an older GPU: its mean power over the block
        assert summary["gpu_energy_from"] == "mean power x seconds" and summary["gpu_energy_j"] > 0
