"""What a training process fixes before and as Keras starts: its CPUs, the backend, the thread
pools, the imports it keeps out, the random seeds; and what it then reads back (device, threads).

Keras is imported only after `start_training_process` has pinned the CPUs and set the backend
and the thread pools: all must be fixed before the framework starts.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys

import numpy as np

from mnistbench.training.cpus import claim_cpus, usable_cpus

INSTALL_HINT = ".venv/bin/pip install -r requirements-backends.txt"


def configure_runtime(backend: str, threads: int) -> None:
    """Fix the backend and every thread pool to `threads`, so parallel jobs never oversubscribe."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    # TensorFlow's own pools are sized in start_keras through tf.config.threading: its
    # TF_NUM_*_THREADS variables also starve the input pipeline.
    if backend == "torch":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on a GPU
    if backend == "jax":
        # XLA's CPU client sizes its intra-op pool (threads named tf_XLAEigen) from PJRT_NPROC,
        # else from every CPU the process may use: unpinned, it would use them all whatever
        # `threads` says (tests/test_jax_threads.py counts the pool).
        os.environ["PJRT_NPROC"] = str(threads)
        flags = ["--xla_gpu_deterministic_ops=true"]
        if threads == 1:
            flags.append("--xla_cpu_multi_thread_eigen=false")
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def start_training_process(backend: str, threads: int, pin_cpus: bool = True) -> dict:
    """All that a training process fixes before Keras is first imported: its CPUs, the
    backend and thread pools (threads inherit both), and the imports it keeps out. Returns
    how it was pinned, for metrics.json."""
    if pin_cpus:
        pinning = claim_cpus(threads)
        facts = {"pinned": pinning.pinned, "why_unpinned": pinning.why_unpinned}
    else:
        facts = {"pinned": False, "why_unpinned": "train.pin_cpus is false"}
    configure_runtime(backend, threads)
    skip_unused_imports(backend)
    return facts


FRAMEWORKS = ("tensorflow", "jax", "torch")


def skip_unused_imports(backend: str) -> None:
    """Keep out packages that Keras and the frameworks import when installed but a training job
    never uses: matplotlib.pyplot (Keras's image gallery), scikit-learn (keras.wrappers: a broken
    install failed every JAX run on the GPU machine), and JAX and PyTorch unless the run's
    backend is one of them (TensorFlow imports JAX for tf.lite); each also costs a share of a
    second at every start. Those imports are guarded by `except ImportError`, which a module set
    to None in sys.modules raises. TensorFlow cannot be kept out so: Keras takes its mere name in
    sys.modules as a sign that it is loaded; seed_everything avoids importing it.
    Not for notebooks: they plot.
    """
    sys.modules.setdefault("matplotlib.pyplot", None)
    sys.modules.setdefault("sklearn", None)
    for framework in ("jax", "torch"):
        if framework != backend:
            sys.modules.setdefault(framework, None)


def frameworks_loaded() -> list[str]:
    return [framework for framework in FRAMEWORKS if sys.modules.get(framework) is not None]


def device_name(keras) -> str:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return "GPU " + tf.config.experimental.get_device_details(gpus[0]).get(
                "device_name", gpus[0].name
            )
    elif keras.backend.backend() == "jax":
        import jax

        return str(jax.devices()[0])
    elif keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return "GPU " + torch.cuda.get_device_name(0)
    return "CPU"


def _inter_op_threads(threads: int) -> int:
    """Pinned to CPUs of its own, one inter-op thread is fastest; unpinned, two (an idle second
    thread then keeps the pool awake). docs/measurements.md has the figures."""
    return 1 if len(usable_cpus()) <= threads else 2


def threads_used(keras, threads: int) -> int:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads()
    if keras.backend.backend() == "torch":
        import torch

        return torch.get_num_threads()
    return threads  # XLA's CPU pool is sized by PJRT_NPROC in configure_runtime


def start_keras(backend: str, threads: int):
    """Import Keras on `backend` (set by configure_runtime) and size the framework's thread pools."""
    if importlib.util.find_spec(backend) is None:
        raise RuntimeError(f"backend {backend} is not installed: {INSTALL_HINT}")
    if backend == "torch":
        import torch  # its pools must be sized before Keras runs a single op

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(_inter_op_threads(threads))
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(_inter_op_threads(threads))
    return keras


def seed_everything(keras, seed: int) -> bool:
    """Seed every generator and ask the backend for deterministic ops; returns whether it has them."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        # Same seed, same numbers: TensorFlow then raises rather than run an op that has no
        # deterministic kernel (some GPU ops), so a run never silently varies.
        tf.config.experimental.enable_op_determinism()
        return True
    # keras.utils.set_random_seed imports TensorFlow (seconds) on every backend, to seed
    # tf.data; JAX and PyTorch runs need only what it sets besides, set here the same way.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)  # raises, like TensorFlow, on an op without one
    # XLA on the CPU is deterministic; on a GPU, configure_runtime asked XLA for deterministic ops.
    return True
