"""Per run, for runs.csv: the arithmetic it did (mnistbench/measures/flops.py), how fast it did it, and the
energy it took, in all and to each accuracy target; and per host, the GPU its runs used, for the
machine table. Read from metrics.json by mnistbench.results.summary; no framework is imported."""

from __future__ import annotations

from mnistbench.measures import flops
from mnistbench.records import GPU_FACT_KEYS

# The sampler's and the meter's figures that runs.csv keeps under the same names.
ENERGY_FACTS = (
    "gpu_utilization_mean",
    "gpu_utilization_max",
    "gpu_power_mean_w",
    "gpu_power_max_w",
    "gpu_energy_j",
    "cpu_energy_j",
    "cpu_energy_unavailable",
)
# Where each energy figure's seconds are: the block it was measured over (the train phase with
# the evaluations between its epochs, i.e. up to the wall clock's end).
ENERGY_SECONDS = {"gpu_energy_j": "gpu_sampled_seconds", "cpu_energy_j": "cpu_energy_seconds"}
# machine.csv's columns of a host's GPU, from the facts of its GPU runs.
MACHINE_GPU_COLUMNS = {key: key if key.startswith("gpu_") else f"gpu_{key}" for key in GPU_FACT_KEYS}


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)  # NaN != NaN


def run_columns(metrics: dict, steady_epoch_s: float | None) -> dict:
    """FLOPs per image forward and in training, FLOPs per epoch, the FLOP/s achieved in the
    steady epoch, and the GPU's and CPU's utilization, power and energy."""
    forward, train = metrics.get("flops_forward_per_image"), metrics.get("flops_train_per_image")
    if "flops_train_per_image" not in metrics:  # a run recorded before runs counted their model
        forward, train = _hand_count(metrics.get("params", {}))
    per_epoch = train * metrics["n_train"] if train is not None and metrics.get("n_train") else None
    achieved = per_epoch / steady_epoch_s if per_epoch and steady_epoch_s else None
    row = {
        "flops_forward_per_image": forward,
        "flops_train_per_image": train,
        "flops_unknown_layers": metrics.get("flops_unknown_layers"),
        "flops_per_epoch": per_epoch,
        "achieved_flops_per_s": achieved,
    }
    row.update({key: metrics.get(key) for key in ENERGY_FACTS})
    row.update({seconds: metrics.get(seconds) for seconds in ENERGY_SECONDS.values()})
    return row


def _hand_count(params: dict) -> tuple[int | None, int | None]:
    """flops.py's count of a shipped model on MNIST's images, for runs that recorded none (all of
    them trained on 28x28 images, ten classes): without pooling, 0.4% under the cnn's count now."""
    try:
        return (
            flops.forward_flops(params.get("model"), params.get("hidden_units")),
            flops.train_flops(params.get("model"), params.get("hidden_units")),
        )
    except ValueError:  # a model this version does not know: no count rather than a wrong one
        return None, None


def to_target_columns(row: dict, target_labels) -> dict:
    """Per target reached: the FLOPs trained until then (epochs_to x images x FLOPs per image),
    and the GPU's and CPU's joules until then at the run's mean power (energy x wall_to /
    the seconds it was measured over). Empty where the target was not reached or nothing measured."""
    columns = {}
    for label in target_labels:
        epochs, wall = _number(row.get(f"epochs_to_{label}")), _number(row.get(f"wall_to_{label}"))
        per_epoch = _number(row.get("flops_per_epoch"))
        columns[f"flops_to_{label}"] = epochs * per_epoch if epochs is not None and per_epoch else None
        for energy, seconds in ENERGY_SECONDS.items():
            joules, span = _number(row.get(energy)), _number(row.get(seconds))
            usable = joules is not None and span and wall is not None
            columns[f"{energy.removesuffix('_j')}_to_{label}_j"] = joules * wall / span if usable else None
    return columns


class HostGpus:
    """The GPUs that each host's runs used (metrics.json's GPU facts), for the machine table: a
    fact on which the host's backends disagree (each built against its own CUDA) reads
    "12.8 (torch); 12.9 (jax)"."""

    def __init__(self):
        self.facts: dict[str, dict[str, dict[str, str]]] = {}  # host -> column -> value -> backends

    def add(self, metrics: dict) -> None:
        if not metrics.get("gpu_name"):
            return
        host = metrics["host"]["hostname"]
        backend = metrics.get("backend") or metrics.get("params", {}).get("backend", "?")
        for key, column in MACHINE_GPU_COLUMNS.items():
            value = metrics.get(key)
            if value is not None:
                backends = self.facts.setdefault(host, {}).setdefault(column, {}).setdefault(str(value), [])
                if backend not in backends:
                    backends.append(backend)

    def columns(self, hostname: str) -> dict[str, str | None]:
        found = self.facts.get(hostname, {})
        row = {}
        for column in MACHINE_GPU_COLUMNS.values():
            values = found.get(column, {})
            if len(values) <= 1:
                row[column] = next(iter(values), None)
            else:
                row[column] = "; ".join(
                    f"{value} ({', '.join(sorted(b))})" for value, b in sorted(values.items())
                )
        return row

    def joined(self, machines: list[dict]) -> list[dict]:
        """machine.csv's rows with the GPU columns of each host (empty where it ran no GPU run)."""
        return [{**info, **self.columns(info["hostname"])} for info in machines]
