import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from mnistbench import grid, locks, prepare, sources, summary

try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError as error:
    # snakemake wraps the jsonschema error in a multi-line message; say it in one line.
    if not hasattr(error.__context__, "absolute_path"):
        raise
    raise WorkflowError(grid.describe_validation_error(error.__context__)) from None

try:
    grid.check_paths(config)
except grid.ConfigError as error:
    raise WorkflowError(str(error)) from None

RUNS, EXPERIMENTS = grid.expand(config)

# A snakemake killed hard leaves its lock behind; clear it when no snakemake runs here, so
# that simply running again resumes. Jobs inside a cluster never touch the main call's lock.
if not workflow.remote_exec:
    locks.clear_stale_locks(os.getcwd())


# Light jobs run where snakemake runs, not as cluster jobs (each costs seconds of start-up);
# download runs there too, since compute nodes often have no internet.
localrules:
    download,
    evaluate,


# Names are built from validated settings only; the constraints keep every path inside
# results/ and resources/ whatever a target on the command line asks for.
wildcard_constraints:
    dataset="|".join(sources.BUILTIN_SOURCES),
    normalize="|".join(prepare.METHODS),
    run=r"[A-Za-z0-9][A-Za-z0-9._-]*",


def final_targets():
    return ["results/report.html"]


def check_runs(runs_csv, log_path):
    """Fail the workflow, after the report is built, when a run failed."""
    failed = summary.failed_runs(runs_csv, "results/runs")
    with open(log_path, "w") as log:
        print(f"{len(RUNS)} runs, failed: {', '.join(failed) or 'none'}", file=log)
    if failed:
        raise WorkflowError(
            f"{len(failed)} of {len(RUNS)} runs failed ({', '.join(failed)}); the report shows "
            "them, results/runs/<run>/train.log says why, and the next call retries them."
        )


def lesson_settings():
    return grid.normalize_run({**config["defaults"], **config["lesson"]})


def prepared_files(params):
    folder = f"resources/prepared/{params['dataset']}_{params['normalize']}"
    return [f"{folder}/{file}" for file in prepare.FILES]


def lesson_data(wildcards):
    return prepared_files(lesson_settings())


def lesson_parameters(wildcards, input, threads):
    return {
        "data_path": os.path.abspath(os.path.dirname(input.data[0])),
        "settings": lesson_settings(),
        "threads": threads,
    }


def repo_file(path):
    """A file of this repository (notebook, code), wherever the working directory is.

    Code that a rule's script imports is listed among its inputs, so that editing it reruns
    exactly the jobs it affects (Snakemake's own code trigger sees only the script).
    """
    return os.path.join(workflow.basedir, path)


def repo_files(*paths):
    return [repo_file(path) for path in paths]


def report_parameters(wildcards, input):
    names = ("runs_csv", "timings_csv", "history_csv", "machine_csv", "datasets_csv")
    return {
        **{name: os.path.abspath(input[name]) for name in names},
        "runs_dir": os.path.abspath("results/runs"),
        "experiments": config["experiments"],
    }


SUMMARY_FILES = [
    "results/summary/runs.csv",
    "results/summary/timings.csv",
    "results/summary/history.csv",
    "results/summary/machine.csv",
    "results/summary/datasets.csv",
]


def run_paths(name):
    return expand(f"results/runs/{{run}}/{name}", run=sorted(RUNS))


def dataset_provenance():
    return expand("resources/{dataset}.json", dataset=grid.datasets_used(RUNS))


def download_sources(wildcards):
    data = config["data"][wildcards.dataset]
    return sources.sources_for(wildcards.dataset, data["local_path"], data["mirrors"])


def prepared_data(wildcards):
    return prepared_files(RUNS[wildcards.run])


def run_params(wildcards):
    return {"name": wildcards.run, **RUNS[wildcards.run]}


def train_mem_mb(wildcards):
    """Memory for a training job: measured peaks are about 1.3 GB (dense) and 2 GB (cnn) on MNIST."""
    if config["train"]["mem_mb"]:
        return config["train"]["mem_mb"]
    return 4000 if RUNS[wildcards.run]["model"] == "cnn" else 2500


def train_runtime(wildcards):
    """Minutes for a training job: generous bounds from epochs measured here (cnn: 10 s/epoch)."""
    if config["train"]["runtime"]:
        return config["train"]["runtime"]
    params = RUNS[wildcards.run]
    per_epoch = 3 if params["model"] == "cnn" else 1
    return 10 + params["epochs"] * per_epoch


def train_priority(wildcards):
    """Longest runs first: a long run started last would leave the other cores idle."""
    return round(grid.expected_train_seconds(RUNS[wildcards.run]), 1)


def train_options(wildcards):
    return {
        key: config["train"][key]
        for key in ("steps_per_execution", "jit_compile", "pin_cpus")
    }
