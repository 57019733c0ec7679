"""Names of what the training side records and the results and report sides read: a run's GPU
facts and a ceiling's settings. Shared here, below both sides, so that neither reaches into
the other for a constant."""

# A GPU run's facts, from its backend and NVML (training.devices) and per host in machine.csv.
GPU_FACT_KEYS = ("gpu_name", "gpu_memory_mb", "cuda_version", "cudnn_version", "driver_version")
# What one ceiling measurement is keyed by (training.ceiling), and the report joins runs on.
CEILING_KEYS = ("device", "backend", "precision", "threads")
