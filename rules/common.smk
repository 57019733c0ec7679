import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from mnistbench import compare, grid, locks, prepare, sources, summary

try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError as error:
    # snakemake wraps the jsonschema error in a multi-line message; say it in one line.
    if not hasattr(error.__context__, "absolute_path"):
        raise
    raise WorkflowError(grid.describe_validation_error(error.__context__)) from None

try:
    grid.check_config(config)
    if config["compare"]["baseline"]:
        BASELINE = compare.check_baseline(config["compare"]["baseline"])
except (grid.ConfigError, compare.BaselineError) as error:
    raise WorkflowError(str(error)) from None

# {job name: Measurement (a run's settings and its repeat)}, {job name: its experiments}
RUNS, EXPERIMENTS = grid.expand(config)

# A snakemake killed hard leaves its lock behind; clear it when its holder is provably gone, so
# that simply running again resumes (mnistbench/locks.py). Cluster jobs never touch the lock.
if not workflow.remote_exec:
    locks.clear_stale_locks(os.getcwd())


# train.isolate: every training job takes the one "timed_training" slot, so that timed jobs never
# overlap; the other rules do not ask for it and run beside them. `--resources timed_training=N`
# on the command line allows N at once.
if "timed_training" not in workflow.global_resources:
    workflow.register_resource("timed_training", 1)


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
    targets = ["results/report.html"]
    if config["compare"]["baseline"]:
        targets += ["results/compare.html", "results/summary/compare.csv"]
    return targets


def baseline_tables():
    """The baseline's summary tables, inputs of rule compare (none when nothing is compared)."""
    if not config["compare"]["baseline"]:
        return []
    return [str(path.resolve()) for path in BASELINE.values() if path.is_file()]


def failed_runs(runs_csv, log_path):
    """The failed runs of runs.csv, written to the log of rule all."""
    failed = summary.failed_runs(runs_csv)
    with open(log_path, "w") as log:
        print(f"{len(RUNS)} runs, failed: {', '.join(failed) or 'none'}", file=log)
    return failed


def fail_for(failed):
    """Fail the workflow, after the report is built, naming the failed runs."""
    raise WorkflowError(
        f"{len(failed)} of {len(RUNS)} runs failed ({', '.join(failed)}); the report shows "
        "them, results/runs/<run>/train.log says why, and the next call retries them."
    )


def lesson_run():
    return grid.Run.of({**config["defaults"], **config["lesson"]})


def lesson_data(wildcards):
    run = lesson_run()
    return prepare.prepared_path(run.dataset, run.normalize)


def lesson_parameters(wildcards, input, threads):
    return {
        "data_path": os.path.abspath(input.data),
        "settings": lesson_run().settings(),
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
    """The notebook's parameters: where the summary tables and the runs are, and the grid."""
    return {
        "summary_dir": os.path.abspath(os.path.dirname(input.runs)),
        "runs_dir": os.path.abspath("results/runs"),
        "experiments": config["experiments"],
    }


def run_paths(name):
    return expand(f"results/runs/{{run}}/{name}", run=sorted(RUNS))


def dataset_provenance():
    return expand("resources/{dataset}.json", dataset=grid.datasets_used(RUNS))


def download_sources(wildcards):
    data = config["data"][wildcards.dataset]
    return sources.sources_for(wildcards.dataset, data["local_path"], data["mirrors"])


def prepared_data(wildcards):
    run = RUNS[wildcards.run].run
    return prepare.prepared_path(run.dataset, run.normalize)


def run_settings(wildcards):
    return RUNS[wildcards.run].run.settings()


def run_repeat(wildcards):
    return RUNS[wildcards.run].repeat


def train_mem_mb(wildcards):
    """Memory for a training job: the cnn's peak is the highest (README has the measured peaks)."""
    if config["train"]["mem_mb"]:
        return config["train"]["mem_mb"]
    return 4000 if RUNS[wildcards.run].run.model == "cnn" else 2500


def train_runtime(wildcards):
    """Minutes for a training job: generous bounds per epoch, a cnn epoch being the slowest."""
    if config["train"]["runtime"]:
        return config["train"]["runtime"]
    run = RUNS[wildcards.run].run
    per_epoch = 3 if run.model == "cnn" else 1
    return 10 + run.epochs * per_epoch


def train_time_limit(wildcards):
    """Seconds after which the job's supervisor stops its training process and records it as
    crashed: a minute before the scheduler would end the whole job and lose its outputs.
    """
    return max(60, train_runtime(wildcards) * 60 - 60)


def train_priority(wildcards):
    """Longest runs first: a long run started last would leave the other cores idle."""
    return round(RUNS[wildcards.run].run.expected_train_seconds(), 1)


def train_options(wildcards):
    return {
        key: config["train"][key]
        for key in ("steps_per_execution", "jit_compile", "pin_cpus")
    }
