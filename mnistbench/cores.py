"""A run's threads against the cores it gets: a run is never labelled with hardware it did not get.

Snakemake silently lowers a job's threads to --cores (and --max-threads, --set-threads): a
`threads: 8` run on a 4-core call would train on 4 threads and be reported as t8. So a call
refuses such a run before any job starts (rules/common.smk), and where the cores are only known
on the node (a cluster job), the training job records the run as failed instead of training it
(mnistbench/training/supervise.py). Results from before these checks are caught by the summary.
"""

from __future__ import annotations

FIX = "give the call more cores (--cores) or lower the run's threads"


def refused_at_planning(what: str, threads: int, cores: int) -> str | None:
    """One line refusing `what` ("run <name>", or a ceiling probe) of `threads` threads in a call
    that gives its job `cores` cores (its threads once Snakemake lowered them), or None."""
    if threads <= cores:
        return None
    return f"{what} asks for {threads} threads, but this call has {cores} core(s) for it: {FIX}"


def runs_first(line: str) -> tuple[bool, str]:
    """A sort key of refusals: those of runs first, then the rest (ceiling probes), by name."""
    return not line.startswith("run "), line


def refused_on_the_node(run: str, threads: int, given: int, cpus: list[int]) -> str | None:
    """One line failing a run of `threads` threads whose job was given `given` threads and may
    run on `cpus` (its CPU affinity: a cgroup, a cpuset, taskset), or None when it fits."""
    cores = min(given, len(cpus))
    if threads <= cores:
        return None
    return (
        f"run {run} asks for {threads} threads, but its job has {cores} core(s) "
        f"({given} thread(s) given, CPUs {','.join(map(str, cpus)) or 'none'}): {FIX}"
    )


def threads_short(metrics: dict) -> str | None:
    """For a recorded run (its metrics.json): one line saying that it did not have the threads its
    setting asks for (Snakemake's threads or the framework's pool differ from it, or it could use
    fewer CPUs), or None when it had them. Such a run must never be shown as its setting."""
    asked = (metrics.get("params") or {}).get("threads") or 1
    cpus = metrics.get("cpus")
    had = {
        "threads given": metrics.get("threads"),
        "threads used": metrics.get("threads_used"),
        "CPUs": len(cpus) if cpus and len(cpus) < asked else None,  # more CPUs than threads is fine
    }
    differing = {name: count for name, count in had.items() if count is not None and count != asked}
    if not differing:
        return None
    counts = ", ".join(f"{name} {count}" for name, count in differing.items())
    return f"asks for {asked} threads but had {counts}, so it is not shown as its setting"
