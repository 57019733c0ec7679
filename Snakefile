from snakemake.utils import min_version

min_version("9.0")


# A config file given on the command line replaces config.yaml instead of being merged into
# it: cluster jobs are started without --replace-workflow-config, and every job must see the
# same grid as the main call.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/report.smk"


onstart:
    locks.record_holder(os.getcwd())


onsuccess:
    locks.forget_holder(os.getcwd())


onerror:
    locks.forget_holder(os.getcwd())


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
