"""Which device a training process runs on (`hide_gpus` before the framework is imported for a
"cpu" run, `require_gpu` after it for a "gpu" run), and what hardware a run actually used (the
rest, for metrics.json: they never raise, and cost nothing measurable without a GPU)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import sys
import threading
import time

from mnistbench.records import GPU_FACT_KEYS

FRAMEWORK_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}

# The CPU flags that decide low-precision speed. bfloat16 in hardware (avx512_bf16; AMX tiles
# on Sapphire Rapids and later): without them mixed_bfloat16 is emulated and can be slower than
# float32. float16 arithmetic (avx512_fp16): without it mixed_float16 on a CPU is emulated too.
# The float32 baseline the kernels are built for (avx512f, avx2, fma), which the others are
# measured against. Conversion between float16 and float32 (f16c): without it even storing
# float16 costs.
LOW_PRECISION_FLAGS = {"avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "avx512f", "avx2", "fma", "f16c"}


class NoGpuError(RuntimeError):
    """A "gpu" run whose backend sees no GPU: it fails rather than silently train on the CPU."""


def hide_gpus(backend: str) -> None:
    """Hide every GPU from TensorFlow, JAX and PyTorch, for a "cpu" run. Environment variables,
    because each framework reads them once, when it first looks for devices, and offers no way
    to forget a GPU it has found: so this must run before the framework is imported."""
    if backend not in FRAMEWORK_NAMES:
        raise ValueError(f"unknown backend {backend!r}")
    if sys.modules.get(backend) is not None:
        raise RuntimeError(f"hide_gpus must run before {backend} is imported")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CUDA: TensorFlow, PyTorch, JAX's CUDA plugin
    os.environ["HIP_VISIBLE_DEVICES"] = ""  # the same for ROCm builds
    os.environ["JAX_PLATFORMS"] = "cpu"  # else JAX still tries its GPU plugin and warns


def require_gpu(keras) -> str:
    """The name of the GPU that the run's backend sees; NoGpuError (one line) when it sees none."""
    backend = keras.backend.backend()
    try:
        name, reasons = _gpu_name(backend), []
    except Exception as error:  # a broken CUDA install: say so in the same one line
        name, reasons = None, [f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"]
    if name is not None:
        return name
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        reasons.append(f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}")
    if "SLURM_JOB_ID" in os.environ:  # whether the request reached the scheduler
        given = os.environ.get("SLURM_GPUS_ON_NODE") or "no"
        reasons.append(f"SLURM job {os.environ['SLURM_JOB_ID']} was given {given} GPU(s)")
    if _quietly(lambda: _cpu_only_build(backend)):
        reasons.append("a CPU-only build")
    detail = f" ({'; '.join(reasons)})" if reasons else ""
    raise NoGpuError(f"device gpu: {FRAMEWORK_NAMES.get(backend, backend)} sees no GPU{detail}")


def _gpu_name(backend: str) -> str | None:
    """The name of the first GPU the backend sees, None when it sees none."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        return details.get("device_name", gpus[0].name) if gpus else None
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None  # ROCm too
    if backend == "jax":
        gpus = _jax_gpus()
        return gpus[0].device_kind if gpus else None
    raise ValueError(f"unknown backend {backend!r}")


def _jax_gpus() -> list:
    import jax

    try:
        return [device for device in jax.devices() if device.platform == "gpu"]
    except RuntimeError:  # no platform could start (JAX_PLATFORMS naming a missing one)
        return []


def _cpu_only_build(backend: str) -> bool:
    """Whether the framework was installed without GPU support: the usual reason it sees none."""
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.test.is_built_with_gpu_support()
    if backend == "torch":
        import torch

        return torch.version.cuda is None and torch.version.hip is None  # e.g. torch 2.13.0+cpu
    # JAX's GPU support is a plugin package (jax[cuda12]): looked for where JAX looks
    return not (
        importlib.util.find_spec("jax_plugins") or importlib.metadata.entry_points(group="jax_plugins")
    )


def cpu_facts() -> dict:
    """CPU model, the low-precision flags it has and how many CPUs this process may use (after
    pinning). Read from /proc/cpuinfo: py-cpuinfo would cost a second at every run's start."""
    fields = {}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:  # the first processor's block is enough: all cores match
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    flags = LOW_PRECISION_FLAGS & set(fields.get("flags", "").split())
    return {
        "cpu_model": fields.get("model name") or platform.processor(),
        "cpu_flags_low_precision": " ".join(sorted(flags)),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def gpu_facts(keras) -> dict:
    """The GPU in use, its memory and the CUDA, cuDNN and driver versions; all None on a CPU run."""
    facts = dict.fromkeys(GPU_FACT_KEYS)
    backend = keras.backend.backend()
    facts["gpu_name"] = _quietly(lambda: _gpu_name(backend))
    if facts["gpu_name"] is None:
        return facts
    if backend == "tensorflow":  # the versions TensorFlow was built against
        import tensorflow as tf

        build = _quietly(tf.sysconfig.get_build_info) or {}
        facts["cuda_version"], facts["cudnn_version"] = build.get("cuda_version"), build.get("cudnn_version")
    elif backend == "torch":
        import torch

        facts["cuda_version"] = torch.version.cuda
        facts["cudnn_version"] = _quietly(lambda: _cudnn_text(torch.backends.cudnn.version()))
    elif backend == "jax":  # JAX has no public call for these; its CUDA plugin reports them
        cuda_versions = _quietly(lambda: importlib.import_module("jax._src.lib").cuda_versions)
        version = _quietly(lambda: cuda_versions.cuda_runtime_get_version())
        facts["cuda_version"] = f"{version // 1000}.{version % 1000 // 10}" if version else None
        facts["cudnn_version"] = _quietly(lambda: _cudnn_text(cuda_versions.cudnn_get_version()))
    nvml = _open_nvml_gpu()
    if nvml is not None:
        pynvml, handle = nvml
        facts["driver_version"] = _quietly(pynvml.nvmlSystemGetDriverVersion)
        facts["gpu_memory_mb"] = _quietly(lambda: round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20))
        _quietly(pynvml.nvmlShutdown)
    return facts


def _cudnn_text(version: int | None) -> str | None:
    """cuDNN's version number as text: 90100 is 9.1.0 (from cuDNN 9), 8907 is 8.9.7 (before)."""
    if not version:
        return None
    major_unit = 10000 if version >= 90000 else 1000
    return f"{version // major_unit}.{version % major_unit // 100}.{version % 100}"


def peak_gpu_memory_mb(keras) -> float | None:
    """The most GPU memory the run's framework held at once, in MiB; None without a GPU."""

    def peak_bytes():
        backend = keras.backend.backend()
        if _gpu_name(backend) is None:
            return None
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"]
        if backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated()
        return (_jax_gpus()[0].memory_stats() or {}).get("peak_bytes_in_use")

    peak = _quietly(peak_bytes)
    return None if peak is None else round(peak / 2**20, 1)


def _quietly(call):
    """call(), or None when it fails: a fact that cannot be had must never fail the run."""
    try:
        return call()
    except Exception:
        return None


def _open_nvml_gpu():
    """(pynvml, handle of the run's GPU 0) with NVML open, for the caller to shut down; None where
    CUDA_VISIBLE_DEVICES hides every GPU or there is no NVML (package or driver missing). NVML
    ignores that variable, so the run's GPU 0 is found here: the first it lists, by UUID or by
    index (NVML counts in PCI order, as CUDA does with CUDA_DEVICE_ORDER=PCI_BUS_ID)."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    if not (first.isdigit() or first.startswith(("GPU-", "MIG-"))):
        return None  # "" or "-1": every GPU hidden
    try:
        import pynvml  # the nvidia-ml-py package: optional at run time

        pynvml.nvmlInit()
    except Exception:  # no such package, or no NVIDIA driver (pynvml.NVMLError)
        return None
    try:
        if first.isdigit():
            return pynvml, pynvml.nvmlDeviceGetHandleByIndex(int(first))
        return pynvml, pynvml.nvmlDeviceGetHandleByUUID(first)
    except pynvml.NVMLError:
        pynvml.nvmlShutdown()
        return None


class GpuSampler:
    """Samples the run's GPU's utilisation (%) and power (W) every `interval_s` in a daemon thread
    while in the `with` block, and the energy it used (J): from NVML's energy counter where the
    GPU has one (Volta and later), else its mean power times the block's seconds. No NVML or no
    visible GPU: no thread, and `summary()` gives None."""

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self.utilization: list[float] = []
        self.power_w: list[float] = []
        self.samples = 0
        self.seconds: float | None = None
        self._energy_mj: list[int] = []  # the counter at the start and at the end
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pynvml = None
        self._handle = None

    def __enter__(self) -> GpuSampler:
        self._started = time.perf_counter()
        nvml = _open_nvml_gpu()
        if nvml is not None:  # else no thread: nothing to measure, nothing spent
            self._pynvml, self._handle = nvml
            self._read_energy()
            self._thread = threading.Thread(target=self._sample, args=nvml, daemon=True, name="gpu-sampler")
            self._thread.start()
        return self

    def __exit__(self, *exception) -> None:
        self.seconds = time.perf_counter() - self._started
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._read_energy()
            _quietly(self._pynvml.nvmlShutdown)

    def _read_energy(self) -> None:
        energy = _quietly(lambda: self._pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        if energy is not None:
            self._energy_mj.append(int(energy))

    def _sample(self, pynvml, handle) -> None:
        while True:  # sample first, so even a phase shorter than interval_s has one sample
            self.samples += 1
            with contextlib.suppress(pynvml.NVMLError):  # e.g. not supported on a MIG slice
                self.utilization.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            with contextlib.suppress(pynvml.NVMLError):
                self.power_w.append(pynvml.nvmlDeviceGetPowerUsage(handle) / 1000)  # mW
            if self._stop.wait(self.interval_s):
                return

    def energy(self) -> tuple[float | None, str | None]:
        """Joules the GPU used in the block, and where the figure comes from."""
        if len(self._energy_mj) == 2 and self._energy_mj[1] >= self._energy_mj[0]:
            return round((self._energy_mj[1] - self._energy_mj[0]) / 1000, 3), "energy counter"
        if self.power_w and self.seconds:
            return round(statistics.fmean(self.power_w) * self.seconds, 3), "mean power x seconds"
        return None, None

    def summary(self) -> dict:
        utilization, power_w = list(self.utilization), list(self.power_w)
        energy_j, energy_from = self.energy()
        return {
            "gpu_utilization_mean": round(statistics.fmean(utilization), 1) if utilization else None,
            "gpu_utilization_max": max(utilization, default=None),
            "gpu_power_mean_w": round(statistics.fmean(power_w), 1) if power_w else None,
            "gpu_power_max_w": max(power_w, default=None),
            "gpu_samples": self.samples,
            "gpu_energy_j": energy_j,
            "gpu_energy_from": energy_from,
            # The block's seconds: the train phase with the evaluations between its epochs.
            "gpu_sampled_seconds": round(self.seconds, 3) if energy_j is not None else None,
        }
