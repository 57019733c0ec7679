from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
        runs="results/summary/runs.csv",
    log:
        "results/logs/check_runs.log",
    localrule: True
    run:
        failed = failed_runs(input.runs, log[0])
        # A failed run must train again next time: forget its completion marker.
        summary.forget_runs(failed, "results/runs", input.runs)
        if failed:
            fail_for(failed)
