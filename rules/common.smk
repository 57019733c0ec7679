import os
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from snakemake.logging import logger

from mnistbench.training import ceiling
from mnistbench.report import compare, console
from mnistbench import cores, grid, locks
from mnistbench.data import prepare, sources
from mnistbench import networks
from mnistbench.results import summary
from mnistbench.report import merge
from mnistbench.results.result_sets import ResultSetError, set_files

# Only the main snakemake plans: it checks what lies outside the workflow (a local_path on the
# login node, a baseline), settles the folder's locks and forgets runs to retrain. Its jobs,
# local or on a cluster node, parse this file again and must do none of it.
PLANNING = workflow.is_main_process

try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError as error:
    # snakemake wraps the jsonschema error in a multi-line message; say it in one line.
    if not hasattr(error.__context__, "absolute_path"):
        raise
    raise WorkflowError(grid.describe_validation_error(error.__context__)) from None


def check_networks_build():
    """Each network of the user's own that a run trains is built once on a symbolic image of
    each shape it trains on, before any job (remembered per digest in .snakemake/)."""
    shapes = {}
    for job in RUNS.values():
        if job.run.network is not None:
            shape = sources.image_shape(job.run.dataset, config["data"])
            shapes.setdefault(job.run.model, set()).add(shape)
    cache = Path(".snakemake/mnistbench/networks")
    problems = networks.check_builds(NETWORKS, shapes, cache)
    if problems:
        raise networks.NetworkError(problems[0])


try:
    grid.check_finite(config)
    grid.check_moved_keys(config)
    grid.check_target_names(config)
    # Networks of the user's own, read (not run) by every process: their digests name them.
    NETWORKS = networks.read_networks(config["models"], workflow.basedir)
    # {job name: Measurement (a run's settings and its repeat)}, {job name: its experiments}
    RUNS, EXPERIMENTS = grid.expand(config, NETWORKS)
    if PLANNING:
        grid.check_local_paths(config)
        sources.check_datasets(config, RUNS, EXPERIMENTS)
        # A wrong sha256 of a local copy stops the call here, before any job.
        sources.check_local_digests(config["data"], grid.datasets_used(RUNS))
        check_networks_build()
        if config["compare"]["baseline"]:
            compare.check_baseline(config["compare"]["baseline"])
        if config["merge"]["sets"]:
            merge.check_sets(config["merge"])
except (
    grid.ConfigError,
    ResultSetError,
    networks.NetworkError,
    sources.DataError,
) as error:
    raise WorkflowError(str(error)) from None

# Every process of this call inherits its token (mnistbench/locks.py).
CALL = locks.call_token() if PLANNING else os.environ.get(locks.TOKEN_VARIABLE)
if PLANNING:
    # A snakemake killed hard leaves its lock behind: it goes when nothing of its call runs any
    # more, so that simply running again resumes; otherwise it stays, and we say who holds it.
    # `snakemake --unlock` is the user's word that nothing runs: forget the records too.
    for line in locks.settle_locks(os.getcwd(), CALL, unlocking="--unlock" in sys.argv):
        logger.warning(line)
if PLANNING and not grid.only_looking(sys.argv[1:]):
    # Runs that did not end ok in a call that is over train again (normally that call's end
    # forgets them; a call killed hard cannot).
    summary.forget_unfinished(
        summary.runs_metrics(sorted(RUNS), "results/runs"),
        "results/runs",
        "results/summary/runs.csv",
        locks.call_is_over,
    )


# train.isolate: every training job takes the one "timed_training" slot, so that timed jobs never
# overlap; the other rules do not ask for it and run beside them. `--resources timed_training=N`
# on the command line allows N at once.
if "timed_training" not in workflow.global_resources:
    workflow.register_resource("timed_training", 1)


# Light jobs run where snakemake runs, not as cluster jobs (each costs seconds of start-up);
# download runs there too, since compute nodes often have no internet.
localrules:
    download,
    mlperf_log,
    evaluate,


# Names are built from validated settings only; the constraints keep every path inside
# results/ and resources/ whatever a target on the command line asks for.
wildcard_constraints:
    dataset="|".join(sources.dataset_names(config["data"])),
    normalize="|".join(prepare.METHODS),
    run=r"[A-Za-z0-9][A-Za-z0-9._-]*",


def final_targets():
    targets = ["results/report.html"]
    if config["compare"]["baseline"]:
        targets += ["results/compare.html", "results/summary/compare.csv"]
    if config["merge"]["sets"]:
        targets += ["results/merged.html"]
    return targets


def baseline_tables(wildcards):
    """The baseline's summary tables, inputs of rule compare (checked at the start)."""
    if not config["compare"]["baseline"]:
        raise WorkflowError(
            "config key 'compare.baseline' is not set: there is nothing to compare"
        )
    files = compare.baseline_files(config["compare"]["baseline"])
    return [str(path.resolve()) for path in files.values() if path.is_file()]


def start_call():
    """onstart: refuse runs that would get fewer cores than their threads, then record who holds
    the lock and what it locked (not with --nolock: it holds none)."""
    refuse_runs_beyond_cores()
    say_plan()
    if not workflow.execution_settings.lock:
        return
    locked = {
        "input": sorted(set(map(str, workflow.persistence.all_inputfiles()))),
        "output": sorted(set(map(str, workflow.persistence.all_outputfiles()))),
    }
    executor = "local" if workflow.local_exec else workflow.executor_plugin.name
    locks.record_holder(os.getcwd(), CALL, locked, executor)
    # Under our lock now: a call that may still run and whose locks another call's end removed
    # after we planned must not have its runs trained beside it.
    held = locks.conflicts(os.getcwd(), CALL, locked)
    if held:
        locks.forget_holder(os.getcwd(), CALL)
        raise WorkflowError(held[0])


# The call's start, for the closing summary's elapsed time.
CALL_STARTED = time.time()


def say_plan():
    """The console's plan line: how many runs train, how many are done, and about
    how long the rest takes (mnistbench/report/console.py); the logger plugin counts on.
    """
    in_dag = [job for job in workflow.dag.jobs if job.rule.name == "train"]
    needed = [job for job in workflow.dag.needrun_jobs() if job.rule.name == "train"]
    to_train = sorted(job.wildcards.run for job in needed)
    if not in_dag:
        return  # a call that trains nothing (a download, the report alone) has no plan
    line, planned = console.plan(
        RUNS,
        console.setting_labels(RUNS),
        to_train,
        len(in_dag) - len(to_train),
        console.past_job_seconds("results/summary/runs.csv"),
    )
    logger.info(line, extra={"mnistbench_console": True, "mnistbench_plan": planned})


def say_summary(ended):
    """The console's closing lines: how the runs ended, the time taken, the report's first key
    results and where the report and the other pages are."""
    built = [target for target in final_targets() if target.endswith(".html")]
    lines = console.closing_lines(
        ended,
        time.time() - CALL_STARTED,
        "results/summary/settings.csv" if report_asked() else None,
        [target for target in built if was_built(target)],
    )
    for line in lines:
        logger.info(line, extra={"mnistbench_console": True})


def was_built(target):
    """Whether this call's jobs include the one that writes `target`."""
    jobs = workflow.dag.jobs if workflow.dag is not None else []
    return any(target in job.output for job in jobs) and os.path.exists(target)


def refuse_runs_beyond_cores():
    """Snakemake lowers a job's threads to what the call allows (--cores, --max-threads,
    --set-threads) without a word: a run that would train on fewer threads than its setting
    stops the call before any job starts, in one line (mnistbench/cores.py)."""
    refused = []
    for job in workflow.dag.needrun_jobs():
        if job.rule.name == "train":
            asked = (f"run {job.wildcards.run}", RUNS[job.wildcards.run].run.threads)
        # A ceiling probe of t2 measured on one core would be t1's.
        elif job.rule.name == "ceiling":
            asked = (f"ceiling probe {job.output[0]}", int(job.wildcards.threads))
        else:
            continue
        line = cores.refused_at_planning(*asked, job.threads)
        refused += [line] if line else []
    if refused:
        # Runs first ("run ..." sorts after "ceiling ..."): the probes follow from them.
        first = sorted(refused, key=cores.runs_first)[0]
        more = len(refused) - 1
        also = f" (and {more} more job(s) beyond the call's cores)" if more else ""
        raise WorkflowError(first + also)


def is_this_call(call):
    return call == CALL


REPORT_NOT_ASKED = (
    "this call built no report (`./run.sh`, or `snakemake results/report.html`, builds the "
    "report that shows them)"
)


def report_asked():
    """Whether this call's targets include the report (the default target does)."""
    jobs = workflow.dag.jobs if workflow.dag is not None else []
    return any("results/report.html" in job.output for job in jobs)


def end_call(succeeded):
    """onsuccess, onerror: forget the runs this call trained that failed or crashed, so that the
    next call trains them again, and fail naming every run it trained that did not end ok,
    whatever targets the call was given."""
    locks.forget_holder(os.getcwd(), CALL)  # its jobs are over; Snakemake unlocks next
    # How the runs ended, read once, before the runs that did not end ok are forgotten.
    metrics = summary.runs_metrics(sorted(RUNS), "results/runs")
    not_ok = summary.forget_unfinished(
        metrics, "results/runs", "results/summary/runs.csv", is_this_call
    )
    if not_ok:
        named = "; ".join(f"{run}: {status}" for run, status in not_ok.items())
        shown = "the report shows them" if report_asked() else REPORT_NOT_ASKED
        message = (
            f"{len(not_ok)} of {len(RUNS)} runs did not end ok ({named}); {shown}, "
            "results/runs/<run>/train.log says why, and the next call retries the failed and "
            "crashed ones."
        )
        logger.error(message)
    say_summary(console.statuses(metrics))
    if not_ok and succeeded:
        raise WorkflowError(message)


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
        "ceiling_files": [os.path.abspath(path) for path in input.ceiling],
    }


def run_paths(name):
    return expand(f"results/runs/{{run}}/{name}", run=sorted(RUNS))


def dataset_provenance():
    return expand("resources/{dataset}.json", dataset=grid.datasets_used(RUNS))


def download_inputs(wildcards):
    """A local copy is an input: replacing it makes the dataset fetched again."""
    path = config["data"][wildcards.dataset]["local_path"]
    return [path] if path else []


def download_sources(wildcards):
    data = config["data"][wildcards.dataset]
    return sources.sources_for(
        wildcards.dataset, data["local_path"], data.get("mirrors"), data.get("sha256")
    )


def prepared_data(wildcards):
    run = RUNS[wildcards.run].run
    return prepare.prepared_path(run.dataset, run.normalize)


def run_settings(wildcards):
    """The run's settings; for a network of the user's own, also what defines it."""
    run = RUNS[wildcards.run].run
    if run.network is None:
        return run.params()
    return {**run.params(), "network_definition": NETWORKS[run.model].definition()}


def run_repeat(wildcards):
    return RUNS[wildcards.run].repeat


def train_mem_mb(wildcards):
    """Memory for a training job: the cnn's peak is the highest (docs/cluster.md: the memory asked)."""
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


def train_priority(wildcards):
    """Longest runs first: a long run started last would leave the other cores idle."""
    return round(RUNS[wildcards.run].run.expected_train_seconds(), 1)


def train_options(wildcards):
    keys = ("steps_per_execution", "pin_cpus", "eval_every_epoch", "compile_ahead")
    return {key: config["train"][key] for key in keys}


WARNED_DRY_RUN = set()


def train_threads(wildcards):
    """The run's threads. A dry run (no onstart, see refuse_runs_beyond_cores) warns in one line
    about a run that the real call would refuse."""
    threads = RUNS[wildcards.run].run.threads
    if PLANNING and workflow.dryrun and wildcards.run not in WARNED_DRY_RUN:
        settings = workflow.resource_settings
        limits = [limit for limit in (settings.cores, settings.max_threads) if limit]
        line = cores.refused_at_planning(
            f"run {wildcards.run}", threads, min(limits, default=threads)
        )
        if line:
            logger.warning(line)
        WARNED_DRY_RUN.add(wildcards.run)
    return threads


def train_gpus(wildcards):
    """A gpu run asks for one: the SLURM executor turns it into a GPU request, and
    `--resources gpu=N` bounds them on a workstation."""
    return 1 if RUNS[wildcards.run].run.device == "gpu" else 0


def gpu_model_resource(gpus):
    """train.gpu_model as the resource gpu_model of jobs that `gpus(wildcards)` gives a GPU,
    only where it is set: the executor plugin asks for a typed GPU whenever gpu_model is set,
    even for a job of gpu=0."""
    model = config["train"]["gpu_model"]
    if not model:
        return {}
    return {"gpu_model": lambda wildcards: model if gpus(wildcards) else None}


def train_partition(wildcards):
    return RUNS[wildcards.run].run.partition


def partition_resource():
    """The SLURM partition as a resource of training jobs, only where the grid names one: a
    rule's resource replaces the profile's default-resources, even where it is None."""
    if any(job.run.partition for job in RUNS.values()):
        return {"slurm_partition": train_partition}
    return {}


def ceiling_paths():
    """One ceiling per device, backend, precision and threads that the grid trains (none with
    report: ceiling: false)."""
    if not config["report"]["ceiling"]:
        return []
    return expand(
        "results/ceiling/{name}.json",
        name=ceiling.ceilings_of(job.run for job in RUNS.values()),
    )


def ceiling_threads(wildcards):
    return int(wildcards.threads)


def ceiling_gpus(wildcards):
    return 1 if wildcards.device == "gpu" else 0


def merge_tables(wildcards):
    """Each set's summary tables, the merge job's inputs: another folder's as they are (read whole
    at the start), this workflow's own results/ as built by this call."""
    tables = []
    for name, path in config["merge"]["sets"].items():
        if merge.is_this_set(path):
            tables += ["results/summary/runs.csv", "results/summary/machine.csv"]
        else:
            files = set_files(path, merge.where(name)).values()
            tables += [str(file.resolve()) for file in files if file.is_file()]
    return tables


def merged_report_parameters(wildcards, input):
    return {"merged_dir": os.path.abspath(os.path.dirname(input.settings))}
